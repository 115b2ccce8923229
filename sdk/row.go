package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// maxDataKeys bounds the number of keys of one row's data.
const maxDataKeys = 1000

// Row is one data row a service-layer program sends for a trigger.
type Row struct {
	// Index is the well index (column-first from the top left) for
	// plate-based protocols; nil otherwise.
	Index *int `json:"index,omitempty"`
	// Data holds the row's values in the order the client sent them.
	Data Data `json:"data"`
}

// Data is a row's key-value pairs in their original order. Keys are
// camelCase; values are JSON scalars kept byte-for-byte as received.
type Data []Field

// Field is one key-value pair of a row.
type Field struct {
	Key string
	// Value is a JSON scalar (string, number, boolean or null) exactly as
	// the client sent it.
	Value json.RawMessage
}

// Text returns the value as plain text: a string without quotes, a number
// or boolean as written, "" for null.
func (f Field) Text() string {
	switch jsonKind(f.Value) {
	case '"':
		var s string
		if json.Unmarshal(f.Value, &s) == nil {
			return s
		}
	case 'n':
		return ""
	}
	return string(bytes.TrimSpace(f.Value))
}

// Get returns the field named key.
func (d Data) Get(key string) (Field, bool) {
	for _, f := range d {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// UnmarshalJSON decodes a JSON object keeping its members' order and
// each value's bytes as sent; a member name repeated is kept twice (Validate
// reports it). Values share one copy of b, and keys are shared with
// earlier rows that had the same ones, so a row costs a few allocations
// however many fields it has. Anything but an object is a
// *json.UnmarshalTypeError; malformed JSON, a *jsontext.SyntacticError.
func (d *Data) UnmarshalJSON(b []byte) error {
	if k := jsonKind(b); k != '{' {
		return &json.UnmarshalTypeError{Value: strings.TrimPrefix(strings.TrimPrefix(jsonTypeName(b), "an "), "a "), Type: dataType}
	}
	dec := dataDecoders.Get().(*dataDecoder)
	defer dataDecoders.Put(dec)
	out, err := dec.decode(b)
	if err != nil {
		return err
	}
	*d = out
	return nil
}

// dataDecoder splits an object into fields with jsontext, which checks its
// syntax. Decoders are pooled: each holds jsontext's buffer and the keys
// it has seen (rows of one source repeat theirs).
type dataDecoder struct {
	r    bytes.Reader
	dec  jsontext.Decoder
	keys map[string]string
}

// maxInternedKeys bounds the keys a dataDecoder keeps.
const maxInternedKeys = 4096

var dataDecoders = sync.Pool{New: func() any { return &dataDecoder{keys: make(map[string]string)} }}

func (d *dataDecoder) decode(in []byte) (Data, error) {
	d.r.Reset(in)
	// Strictness is DecodeStrict's: here repeated names and invalid UTF-8
	// are kept as sent, as encoding/json keeps them.
	d.dec.Reset(&d.r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	defer d.r.Reset(nil)                         // the pool keeps no caller's bytes
	if _, err := d.dec.ReadToken(); err != nil { // '{'
		return nil, err
	}
	var (
		buf = bytes.Clone(in) // what values are slices of
		out = make(Data, 0, 8)
	)
	for d.dec.PeekKind() != '}' {
		name, err := d.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		key := d.key(name)
		value, err := d.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(d.dec.InputOffset())
		out = append(out, Field{Key: key, Value: json.RawMessage(buf[end-len(value) : end : end])})
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return nil, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("data after the object at byte %d", d.dec.InputOffset())
	}
	return out, nil
}

// key returns the member name of the quoted JSON string name.
func (d *dataDecoder) key(name []byte) string {
	raw := name[1 : len(name)-1]
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		// Escapes, or bytes that are not UTF-8 (each becomes U+FFFD, as
		// encoding/json has it). ReadValue checked the syntax: the one
		// error left to AppendUnquote is the invalid UTF-8 it replaced.
		unquoted, _ := jsontext.AppendUnquote(nil, name)
		return string(unquoted)
	}
	if k, ok := d.keys[string(raw)]; ok {
		return k
	}
	k := string(raw)
	if len(d.keys) < maxInternedKeys {
		d.keys[k] = k
	}
	return k
}

// MarshalJSON encodes the fields as one JSON object in their order.
func (d Data) MarshalJSON() ([]byte, error) {
	size := 2
	for _, f := range d {
		size += len(f.Key) + len(f.Value) + 4
	}
	return d.appendJSON(make([]byte, 0, size))
}

// appendJSON appends the fields as one compact JSON object, in their
// order, to b.
func (d Data) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, f := range d {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, f.Key)
		b = append(b, ':')
		switch {
		case len(f.Value) == 0:
			b = append(b, "null"...)
		case f.Value[0] == '{' || f.Value[0] == '[' || !json.Valid(f.Value):
			// Containers may hold whitespace; an invalid value is an error.
			buf := bytes.NewBuffer(b)
			if err := json.Compact(buf, f.Value); err != nil {
				return nil, fmt.Errorf("data.%s: %w", f.Key, err)
			}
			b = buf.Bytes()
		default:
			// A valid scalar is compact already.
			b = append(b, f.Value...)
		}
	}
	return append(b, '}'), nil
}

// appendKey appends a JSON string for key: as is when it needs no
// escaping (every valid key), else through encoding/json.
func appendKey(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(key)
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"')
}

// Validate checks r against the row contract (an index >= 0 if any; data
// of 1 to 1000 camelCase keys, each once, with scalar values) and returns
// a *ValidationError naming every offending field (relative to the row,
// e.g. "data.Key_One"), or nil.
func (r *Row) Validate() error {
	var errs fieldErrors
	if r.Index != nil && *r.Index < 0 {
		errs.add("index", "must be an integer >= 0")
	}
	switch {
	case r.Data == nil:
		errs.add("data", "is required: an object of camelCase keys to scalar values")
	case len(r.Data) == 0:
		errs.add("data", "must not be empty")
	case len(r.Data) > maxDataKeys:
		errs.add("data", "has %d keys, at most %d are allowed", len(r.Data), maxDataKeys)
	}
	// Rows are small: a map to find duplicates only pays for large ones.
	var seen map[string]struct{}
	if len(r.Data) > 32 {
		seen = make(map[string]struct{}, len(r.Data))
	}
	for i, f := range r.Data {
		if !isCamelCase(f.Key) {
			errs.add("data."+f.Key, "key must be camelCase (e.g. odMeasured)")
		}
		if isDuplicate(r.Data, i, seen) {
			errs.add("data."+f.Key, "key appears more than once")
		}
		switch jsonKind(f.Value) {
		case '{', '[':
			errs.add("data."+f.Key, "value must be a string, number, boolean or null, not %s", jsonTypeName(f.Value))
		case 0:
			errs.add("data."+f.Key, "value is missing")
		}
	}
	return errs.err()
}

// isCamelCase reports whether key matches ^[a-z][a-zA-Z0-9]*$.
func isCamelCase(key string) bool {
	if key == "" || key[0] < 'a' || key[0] > 'z' {
		return false
	}
	for i := 1; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isDuplicate reports whether d[i]'s key appeared before i; seen, when
// not nil, holds the keys before i and gets d[i]'s.
func isDuplicate(d Data, i int, seen map[string]struct{}) bool {
	key := d[i].Key
	if seen != nil {
		_, dup := seen[key]
		seen[key] = struct{}{}
		return dup
	}
	for _, f := range d[:i] {
		if f.Key == key {
			return true
		}
	}
	return false
}
