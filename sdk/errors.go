package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// The closed error vocabulary of the plugin contract. Each crosses the gRPC
// boundary as a code, so both sides test for it with errors.Is.
var (
	// ErrInvalid marks input that failed validation. A *ValidationError
	// says which fields and why.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound is returned by State.Get for an unknown key.
	ErrNotFound = errors.New("not found")
	// ErrPermanent marks a push that can never succeed as it stands; the
	// host dead-letters it at once instead of retrying. Wrap with Permanent.
	ErrPermanent = errors.New("permanent failure")
	// ErrSkipped marks a push the destination does not handle (for example
	// a trigger from another source). Return it with Skip.
	ErrSkipped = errors.New("skipped")
	// ErrDelivered marks a push that was delivered with a note for
	// operators (for example, keys the destination ignored); the error's
	// message is the note. It is an outcome, not a failure: the host
	// records the rows as delivered. Return it with Delivered.
	ErrDelivered = errors.New("delivered with a note")
	// ErrUnavailable means the host could not serve a call now (its store is
	// down, it is shutting down); the call may be retried.
	ErrUnavailable = errors.New("host unavailable")
	// ErrConfig means the plugin's configuration is missing or invalid.
	// Returned from Run or Start it fails the plugin at once, without the
	// restarts a crash gets: only an operator can fix it.
	ErrConfig = errors.New("invalid plugin configuration")
	// ErrTooLarge means a value exceeded a limit (a State value, a message).
	ErrTooLarge = errors.New("too large")
)

// FieldError is one validation failure, naming the offending field by its
// path in the JSON document, e.g. "rows[3].data.Key_One".
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// ValidationError lists every field that failed validation. It matches
// ErrInvalid with errors.Is.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// fieldErrors accumulates field errors under a path prefix.
type fieldErrors struct {
	list []FieldError
}

func (f *fieldErrors) add(field, format string, args ...any) {
	f.list = append(f.list, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (f *fieldErrors) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: f.list}
}

// Permanent marks err as a permanent failure: the host dead-letters the
// push instead of retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: ErrPermanent, err: err}
}

// Skip reports that the destination does not handle this push; the reason
// is shown to operators.
func Skip(reason string) error {
	return &kindError{kind: ErrSkipped, err: errors.New(reason)}
}

// Delivered reports that the rows were delivered and that operators
// should see note, e.g. "ignored keys: error". The host records the push
// as delivered and shows the note with the delivery's status; a host that
// predates notes records a plain delivery. Delivered("") is nil.
func Delivered(note string) error {
	if note == "" {
		return nil
	}
	return &kindError{kind: ErrDelivered, err: errors.New(note)}
}

// kindError attaches one of the sentinel kinds to an error while keeping
// the original message and chain.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }

func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }
