package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Trigger is a protocol trigger as the control-tower publishes it: the
// message body, decoded. Spec and Metadata are kept as their JSON; Raw is
// the whole body as received.
type Trigger struct {
	UUID       string          `json:"uuid"`
	APIVersion string          `json:"apiVersion"`
	Protocol   string          `json:"protocol"`
	Plate      *Plate          `json:"plate,omitempty"`
	Spec       json.RawMessage `json:"spec"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Raw        json.RawMessage `json:"-"`
}

// Plate is a trigger's plate: Rows x Columns wells, each 1-1000.
type Plate struct {
	Rows    int `json:"rows"`
	Columns int `json:"columns"`
}

// Wells is the number of wells, Rows * Columns.
func (p Plate) Wells() int { return p.Rows * p.Columns }

// WellName names well i (0-based, column-first from the top left): on an
// 8x12 plate 0 is A1, 1 is B1, 8 is A2, 95 is H12. Rows past Z are named
// AA, AB, ... It returns "" for an index outside the plate.
func (p Plate) WellName(i int) string {
	if p.Rows < 1 || i < 0 || i >= p.Wells() {
		return ""
	}
	row, col := i%p.Rows, i/p.Rows
	name := ""
	for n := row + 1; n > 0; n = (n - 1) / 26 {
		name = string(rune('A'+(n-1)%26)) + name
	}
	return fmt.Sprintf("%s%d", name, col+1)
}

// DecodeTrigger decodes a trigger message body. The error names what is
// missing or malformed.
func DecodeTrigger(body []byte) (Trigger, error) {
	var t Trigger
	if err := json.Unmarshal(body, &t); err != nil {
		return Trigger{}, fmt.Errorf("trigger: %w", err)
	}
	if t.UUID == "" {
		return Trigger{}, errors.New("trigger: no uuid")
	}
	t.Raw = append(json.RawMessage(nil), body...)
	return t, nil
}

// Wells returns the spec per well: the elements of an array spec (one
// object per well, in well order), or a spec object alone as one element
// (a protocol without wells, or the same for every well).
func (t Trigger) Wells() ([]json.RawMessage, error) {
	spec := bytes.TrimSpace(t.Spec)
	switch {
	case len(spec) == 0 || bytes.Equal(spec, []byte("null")):
		return nil, fmt.Errorf("trigger %s: no spec", t.UUID)
	case spec[0] == '{':
		return []json.RawMessage{spec}, nil
	}
	var wells []json.RawMessage
	if err := json.Unmarshal(spec, &wells); err != nil {
		return nil, fmt.Errorf("trigger %s: spec is neither an object nor an array of objects: %w", t.UUID, err)
	}
	return wells, nil
}
