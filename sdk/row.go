package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var camelCaseRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// MaxDataKeys bounds the number of keys of one row's data.
const MaxDataKeys = 1000

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

// UnmarshalJSON decodes a JSON object keeping key order and raw values.
func (d *Data) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return &json.UnmarshalTypeError{Value: strings.TrimPrefix(strings.TrimPrefix(jsonTypeName(b), "an "), "a "), Type: dataType}
	}
	out := make(Data, 0, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		out = append(out, Field{Key: key, Value: raw})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*d = out
	return nil
}

// MarshalJSON encodes the fields as one JSON object in their order.
func (d Data) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range d {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Quote(f.Key))
		buf.WriteByte(':')
		if len(f.Value) == 0 {
			buf.WriteString("null")
			continue
		}
		if err := json.Compact(&buf, f.Value); err != nil {
			return nil, fmt.Errorf("data.%s: %w", f.Key, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Validate checks r against the row contract and returns a
// *ValidationError naming every offending field (relative to the row, e.g.
// "data.Key_One"), or nil.
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
	case len(r.Data) > MaxDataKeys:
		errs.add("data", "has %d keys, at most %d are allowed", len(r.Data), MaxDataKeys)
	}
	seen := make(map[string]struct{}, len(r.Data))
	for _, f := range r.Data {
		path := "data." + f.Key
		if !camelCaseRE.MatchString(f.Key) {
			errs.add(path, "key must be camelCase (e.g. odMeasured)")
		}
		if _, dup := seen[f.Key]; dup {
			errs.add(path, "key appears more than once")
		}
		seen[f.Key] = struct{}{}
		switch jsonKind(f.Value) {
		case '{', '[':
			errs.add(path, "value must be a string, number, boolean or null, not %s", jsonTypeName(f.Value))
		case 0:
			errs.add(path, "value is missing")
		}
	}
	return errs.err()
}

// ValidateRows validates rows, naming fields as "rows[i]....".
func ValidateRows(rows []Row) error {
	var errs fieldErrors
	for i := range rows {
		errs.merge(fmt.Sprintf("rows[%d]", i), rows[i].Validate())
	}
	return errs.err()
}
