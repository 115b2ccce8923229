package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

var dataType = reflect.TypeFor[Data]()

// DecodeStrict decodes one JSON value into v, rejecting unknown fields and
// trailing data. Its errors are *ValidationError values naming the field
// that failed, so callers can answer with the path.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ValidationError{Fields: []FieldError{{Reason: "body must hold exactly one JSON value"}}}
	}
	return nil
}

// decodeError turns an encoding/json error into a *ValidationError.
func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	fe := FieldError{Reason: err.Error()}
	switch {
	case errors.As(err, &syntax):
		fe.Reason = fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typeErr):
		fe.Field = typeErr.Field
		fe.Reason = fmt.Sprintf("must be %s, not %s", describeType(typeErr.Type), typeErr.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		fe.Reason = "body is empty or truncated JSON"
	default:
		const prefix = "json: unknown field "
		if msg := err.Error(); strings.HasPrefix(msg, prefix) {
			if name, uerr := strconv.Unquote(strings.TrimPrefix(msg, prefix)); uerr == nil {
				fe.Field, fe.Reason = name, "unknown field"
			}
		}
	}
	return &ValidationError{Fields: []FieldError{fe}}
}

// describeType names a Go type the way a JSON author thinks of it.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	if t == dataType {
		return "an object"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// jsonTypeName names the JSON type of raw, for error messages.
func jsonTypeName(raw []byte) string {
	switch jsonKind(raw) {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	default:
		return "a number"
	}
}
