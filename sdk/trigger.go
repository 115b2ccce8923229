package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

var (
	apiVersionRE = regexp.MustCompile(`(?i)^[a-z0-9-]+/v[1-9][0-9]*[a-z0-9]*(/[a-z0-9-]+)?$`)
	uuidRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Limits of a trigger, which Validate enforces.
const (
	maxPlateSide      = 1000 // rows or columns of a plate
	maxProtocolLength = 128  // bytes of Protocol
)

// Trigger is a protocol trigger: a request for a service-layer program (a
// robot driver, a plate reader) to run a protocol.
type Trigger struct {
	// UUID identifies the trigger. The control-tower generates one unless
	// the sender supplies it (1-64 characters of [A-Za-z0-9_-]). Watchers
	// leave it empty.
	UUID string `json:"uuid,omitempty"`
	// APIVersion names the API and version of the service that should act,
	// with an optional device: "OT-2/v1alpha1", "ChiBio/v1alpha1/ChiBio1".
	APIVersion string `json:"apiVersion"`
	// Protocol names the protocol to run, PascalCase by convention.
	Protocol string `json:"protocol"`
	// Plate is set for plate-based protocols; Spec then holds one object
	// per well, indexed column-first from the top left.
	Plate *Plate `json:"plate,omitempty"`
	// Spec holds the protocol's parameters: a non-empty JSON object, or an
	// array of objects (one per well).
	Spec json.RawMessage `json:"spec"`
	// Metadata records where the trigger came from.
	Metadata *Metadata `json:"metadata,omitempty"`
}

// Plate is the shape of a well plate.
type Plate struct {
	Rows    int `json:"rows"`
	Columns int `json:"columns"`
}

// Wells is the number of wells of the plate.
func (p Plate) Wells() int { return p.Rows * p.Columns }

// Metadata records the origin of a trigger.
type Metadata struct {
	// Source names the origin, e.g. "riffyn" or "control-tower.api".
	Source string `json:"source"`
	// Spec holds source-specific details (a JSON object or array), e.g.
	// the Riffyn experiment, activity and run ids.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// StoredTrigger is a trigger as the control-tower stored it, with its
// read-only fields. It is what GET /triggers/{uuid} returns and what a
// pusher receives with each push.
type StoredTrigger struct {
	Trigger
	CreatedAt   time.Time  `json:"createdAt"`
	Source      string     `json:"source"` // "http" or "watcher:<name>"
	Status      string     `json:"status"` // "pending", "published" (the broker confirmed it) or "unroutable" (no queue was bound)
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
}

// ValidAPIVersion reports whether s is a valid apiVersion, e.g.
// "OT-2/v1alpha1" or "ChiBio/v1alpha1/ChiBio1".
func ValidAPIVersion(s string) bool { return apiVersionRE.MatchString(s) }

// ValidUUID reports whether s is acceptable as a client-supplied uuid.
func ValidUUID(s string) bool { return uuidRE.MatchString(s) }

// Validate checks t against the trigger contract (a valid uuid if set, an
// apiVersion, a protocol of at most 128 bytes, plate sides of 1 to 1000,
// a spec of one object or one object per well, metadata with a source)
// and returns a *ValidationError naming every offending field, or nil.
func (t *Trigger) Validate() error {
	var errs fieldErrors
	if t.UUID != "" && !ValidUUID(t.UUID) {
		errs.add("uuid", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
	}
	switch {
	case t.APIVersion == "":
		errs.add("apiVersion", "is required, e.g. OT-2/v1alpha1")
	case !apiVersionRE.MatchString(t.APIVersion):
		errs.add("apiVersion", "%q must look like <api>/v<N>[suffix][/<device>], e.g. OT-2/v1alpha1 or ChiBio/v1alpha1/ChiBio1", t.APIVersion)
	}
	switch p := t.Protocol; {
	case strings.TrimSpace(p) == "":
		errs.add("protocol", "is required, e.g. SerialDilution")
	case strings.TrimSpace(p) != p:
		errs.add("protocol", "must not start or end with white space")
	case len(p) > maxProtocolLength:
		errs.add("protocol", "must be at most %d characters", maxProtocolLength)
	}
	if t.Plate != nil {
		for _, side := range []struct {
			name string
			n    int
		}{{"plate.rows", t.Plate.Rows}, {"plate.columns", t.Plate.Columns}} {
			if side.n < 1 || side.n > maxPlateSide {
				errs.add(side.name, "must be between 1 and %d", maxPlateSide)
			}
		}
	}
	t.validateSpec(&errs)
	if m := t.Metadata; m != nil {
		if strings.TrimSpace(m.Source) == "" {
			errs.add("metadata.source", "is required when metadata is set")
		}
		if len(m.Spec) > 0 && !isNull(m.Spec) {
			if k := jsonKind(m.Spec); k != '{' && k != '[' {
				errs.add("metadata.spec", "must be an object or an array")
			}
		}
	}
	return errs.err()
}

func (t *Trigger) validateSpec(errs *fieldErrors) {
	if len(t.Spec) == 0 || isNull(t.Spec) {
		errs.add("spec", "is required: an object, or an array of objects (one per well)")
		return
	}
	switch jsonKind(t.Spec) {
	case '{':
		if t.Plate != nil {
			errs.add("spec", "must be an array of %d well objects when plate is set", t.Plate.Wells())
			return
		}
		if isEmptyObject(t.Spec) {
			errs.add("spec", "must not be empty")
		}
	case '[':
		var wells []json.RawMessage
		if err := json.Unmarshal(t.Spec, &wells); err != nil {
			errs.add("spec", "is not a valid JSON array")
			return
		}
		if len(wells) == 0 {
			errs.add("spec", "must not be empty")
			return
		}
		for i, w := range wells {
			if jsonKind(w) != '{' {
				errs.add(fmt.Sprintf("spec[%d]", i), "must be an object")
			}
		}
		if p := t.Plate; p != nil && p.Rows >= 1 && p.Columns >= 1 && len(wells) != p.Wells() {
			errs.add("spec", "has %d wells but plate %dx%d has %d", len(wells), p.Rows, p.Columns, p.Wells())
		}
	default:
		errs.add("spec", "must be an object or an array of objects")
	}
}

// Wells returns the per-well specs of a plate-based trigger (Spec is an
// array), or nil when Spec is an object.
func (t *Trigger) Wells() ([]json.RawMessage, error) {
	if jsonKind(t.Spec) != '[' {
		return nil, nil
	}
	var wells []json.RawMessage
	if err := json.Unmarshal(t.Spec, &wells); err != nil {
		return nil, fmt.Errorf("decode spec wells: %w", err)
	}
	return wells, nil
}

// DecodeTrigger decodes one trigger strictly (unknown fields are errors)
// and validates it. Every error is a *ValidationError naming the field.
func DecodeTrigger(data []byte) (Trigger, error) {
	var t Trigger
	if err := DecodeStrict(data, &t); err != nil {
		return Trigger{}, err
	}
	return t, t.Validate()
}

// jsonKind returns the first significant byte of a JSON value: '{', '[',
// '"', 't', 'f', 'n' or a digit or '-'; 0 for empty input.
func jsonKind(raw json.RawMessage) byte {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func isEmptyObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) == 0
}
