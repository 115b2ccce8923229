package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

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
// The object is scanned once and its values are kept as slices of one
// copy of it (one allocation per row, not per field).
func (d *Data) UnmarshalJSON(b []byte) error {
	if out, ok := scanObject(b); ok {
		*d = out
		return nil
	}
	return d.unmarshalSlow(b)
}

// unmarshalSlow decodes with encoding/json's tokenizer, for the inputs
// scanObject leaves to it (invalid JSON, not an object): its errors are
// encoding/json's.
func (d *Data) unmarshalSlow(b []byte) error {
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

// scanObject splits a JSON object into its fields, checking the syntax as
// it goes; ok is false for anything it does not accept (invalid JSON, not
// an object), which the tokenizer then reports.
func scanObject(in []byte) (Data, bool) {
	b := bytes.Clone(in)
	i := skipSpace(b, 0)
	out, end := scanFields(b, i, make(Data, 0, 8))
	if end < 0 || skipSpace(b, end) != len(b) {
		return nil, false
	}
	return out, true
}

// scanFields appends the fields of the object starting at b[i] to out,
// as slices of b, and returns the index after the object, or -1.
func scanFields(b []byte, i int, out Data) (Data, int) {
	if i == len(b) || b[i] != '{' {
		return nil, -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, i + 1
	}
	for {
		name, end := scanKey(b, i)
		if end < 0 {
			return nil, -1
		}
		i = skipSpace(b, end)
		if i == len(b) || b[i] != ':' {
			return nil, -1
		}
		i = skipSpace(b, i+1)
		vend := scanValue(b, i)
		if vend < 0 {
			return nil, -1
		}
		out = append(out, Field{Key: name, Value: json.RawMessage(b[i:vend:vend])})
		i = skipSpace(b, vend)
		switch {
		case i == len(b):
			return nil, -1
		case b[i] == '}':
			return out, i + 1
		case b[i] != ',':
			return nil, -1
		}
		i = skipSpace(b, i+1)
	}
}

// scanKey reads the object key starting at b[i] and returns it and the
// index after it, or -1.
func scanKey(b []byte, i int) (string, int) {
	if i == len(b) || b[i] != '"' {
		return "", -1
	}
	end, escaped := scanString(b, i)
	if end < 0 {
		return "", -1
	}
	if escaped || !utf8.Valid(b[i+1:end-1]) {
		// encoding/json's unquoting (invalid UTF-8 becomes U+FFFD).
		var name string
		if err := json.Unmarshal(b[i:end], &name); err != nil {
			return "", -1
		}
		return name, end
	}
	if end-i-2 == 0 {
		return "", end
	}
	// b is the scanner's own copy and never changes: the key can share its
	// bytes, as the values do, instead of costing an allocation each.
	return unsafe.String(&b[i+1], end-i-2), end
}

// DecodeRowsJSON decodes a JSON array of rows, as json.Unmarshal into a
// []Row does, in one pass for the common shape
// ([{"index":0,"data":{...}},...]) and through encoding/json otherwise.
func DecodeRowsJSON(in []byte) ([]Row, error) {
	if rows, ok := scanRows(in); ok {
		return rows, nil
	}
	var rows []Row
	if err := json.Unmarshal(in, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// scanRows decodes rows whose members are exactly "index" (an integer)
// and "data" (an object), each at most once; ok is false for anything
// else. Values are slices of one copy of in.
func scanRows(in []byte) ([]Row, bool) {
	b := bytes.Clone(in)
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return nil, false
	}
	type span struct {
		index      int
		hasIndex   bool
		hasData    bool
		start, end int // of the row's fields in all
	}
	var (
		all   Data
		spans []span
	)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return []Row{}, skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '{' {
			return nil, false
		}
		sp := span{start: len(all), end: len(all)}
		i = skipSpace(b, i+1)
		for i < len(b) && b[i] != '}' {
			key, end := scanKey(b, i)
			if end < 0 {
				return nil, false
			}
			i = skipSpace(b, end)
			if i == len(b) || b[i] != ':' {
				return nil, false
			}
			i = skipSpace(b, i+1)
			switch {
			case key == "index" && !sp.hasIndex:
				vend := scanNumber(b, i)
				if vend < 0 {
					return nil, false
				}
				n, err := strconv.Atoi(string(b[i:vend]))
				if err != nil {
					return nil, false
				}
				sp.index, sp.hasIndex, i = n, true, vend
			case key == "data" && !sp.hasData:
				var end int
				if all, end = scanFields(b, i, all); end < 0 {
					return nil, false
				}
				sp.start, sp.end, sp.hasData, i = sp.end, len(all), true, end
			default:
				return nil, false
			}
			switch i = skipSpace(b, i); {
			case i < len(b) && b[i] == ',':
				if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
					return nil, false // trailing comma
				}
			case i < len(b) && b[i] == '}':
			default:
				return nil, false
			}
		}
		if i == len(b) {
			return nil, false
		}
		spans = append(spans, sp)
		i = skipSpace(b, i+1)
		switch {
		case i == len(b):
			return nil, false
		case b[i] == ']':
			if skipSpace(b, i+1) != len(b) {
				return nil, false
			}
			rows := make([]Row, len(spans))
			indexes := make([]int, len(spans))
			for k, sp := range spans {
				if sp.hasIndex {
					indexes[k] = sp.index
					rows[k].Index = &indexes[k]
				}
				if sp.hasData {
					rows[k].Data = all[sp.start:sp.end:sp.end]
					if rows[k].Data == nil {
						rows[k].Data = Data{} // an empty object, not a missing one
					}
				}
			}
			return rows, true
		case b[i] != ',':
			return nil, false
		}
		i = skipSpace(b, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString checks the string starting at b[i] (a quote) and returns the
// index after it, or -1 if it is not a valid JSON string; escaped says
// whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, false
		case c == '\\':
			escaped = true
			if i++; i == len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		}
	}
	return -1, false
}

// scanValue checks the value starting at b[i] and returns the index after
// it, or -1. Scalars are checked here; containers (rare: rows hold
// scalars) by encoding/json.
func scanValue(b []byte, i int) int {
	if i == len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := scanString(b, i)
		return end
	case c == '{' || c == '[':
		end := skipContainer(b, i)
		if end < 0 || !json.Valid(b[i:end]) {
			return -1
		}
		return end
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	default:
		return scanNumber(b, i)
	}
}

func scanLiteral(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// scanNumber checks a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) int {
	digits := func(i int) int { // at least one digit
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	default:
		if i = digits(i); i < 0 {
			return -1
		}
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}

// skipContainer returns the index after the object or array starting at
// b[i], matching brackets outside strings, or -1.
func skipContainer(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, _ := scanString(b, i)
			if end < 0 {
				return -1
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
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

// ValidateRows validates rows, naming fields as "rows[i]....".
func ValidateRows(rows []Row) error {
	var errs fieldErrors
	for i := range rows {
		if err := rows[i].Validate(); err != nil {
			errs.merge(fmt.Sprintf("rows[%d]", i), err)
		}
	}
	return errs.err()
}
