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
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

var dataType = reflect.TypeFor[Data]()

// utf8BOM is the byte order mark some Windows tools write before a UTF-8
// document.
var utf8BOM = []byte("\xef\xbb\xbf")

// DecodeStrict decodes one JSON value into v. It ignores a leading UTF-8
// byte order mark (RFC 8259 section 8.1) and refuses what is ambiguous:
// invalid UTF-8, a member name repeated within one object (at any depth),
// unknown fields and trailing data. Its errors are *ValidationError values
// naming the field that failed ("rows[3].data.odMeasured"), so callers can
// answer with the path.
func DecodeStrict(data []byte, v any) error {
	body := bytes.TrimPrefix(data, utf8BOM)
	skipped := int64(len(data) - len(body)) // byte offsets count from the first byte sent
	if err := checkWellFormed(body, skipped); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, skipped)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ValidationError{Fields: []FieldError{{Reason: "body must hold exactly one JSON value"}}}
	}
	return nil
}

// checkWellFormed refuses JSON that encoding/json would read with a
// silent guess: invalid UTF-8 (replaced by U+FFFD, or kept raw in a row's
// values) and repeated member names (the last one wins). The checks are
// github.com/go-json-experiment/json's (RFC 7493, I-JSON), which also
// give the position of the offence.
func checkWellFormed(data []byte, skipped int64) error {
	if jsontext.Value(data).IsValid() {
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	_, err := dec.ReadValue()
	var syn *jsontext.SyntacticError
	if !errors.As(err, &syn) {
		// Not well-formed in a way encoding/json reports as well (it
		// names the byte offset); IsValid and the decoder disagreeing
		// on anything else is left to encoding/json too.
		return nil
	}
	field := pointerPath(syn.JSONPointer)
	if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
		name := syn.JSONPointer.LastToken()
		return &ValidationError{Fields: []FieldError{{Field: field,
			Reason: fmt.Sprintf("member %q appears more than once in the same object: send it once", name)}}}
	}
	if off := invalidUTF8(data); off >= 0 {
		return &ValidationError{Fields: []FieldError{{Field: field,
			Reason: fmt.Sprintf("invalid UTF-8 at byte offset %d (0x%02X): encode text as UTF-8 (a Windows-1252 byte such as 0xB5 for µ is not UTF-8)", int64(off)+skipped, data[off])}}}
	}
	return nil
}

// invalidUTF8 returns the offset of the first byte of data that is not
// part of a valid UTF-8 sequence, or -1.
func invalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// pointerPath writes a JSON Pointer (RFC 6901) as the field paths of
// FieldError: /rows/3/data/keyOne is rows[3].data.keyOne. A token of
// digits is taken as an array index (member names here are camelCase).
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// decodeError turns an encoding/json error into a *ValidationError.
func decodeError(err error, skipped int64) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	fe := FieldError{Reason: err.Error()}
	switch {
	case errors.As(err, &syntax):
		fe.Reason = fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset+skipped, strings.TrimPrefix(syntax.Error(), "json: "))
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
