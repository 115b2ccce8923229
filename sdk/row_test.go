package sdk

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Data's decoder and encoding/json's tokenizer agree on every input: same
// fields, same raw values, and an error exactly when the tokenizer has one.
func TestDataDecoderAgreesWithTokenizer(t *testing.T) {
	for _, in := range dataInputs {
		checkDecoderAgrees(t, in)
	}
	// Values do not alias the caller's buffer.
	buf := []byte(`{"a":"xyz"}`)
	var d Data
	if err := d.UnmarshalJSON(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, `{"a":"XXX"}`)
	if string(d[0].Value) != `"xyz"` {
		t.Fatalf("value aliases the input: %s", d[0].Value)
	}
}

func FuzzDataDecoder(f *testing.F) {
	for _, in := range dataInputs {
		f.Add(in)
	}
	f.Fuzz(checkDecoderAgrees)
}

var dataInputs = []string{
	`{}`, ` { } `, `{"a":1}`, "{\n \"a\" : 1 ,\t\"b\":\"x\"\r\n}",
	`{"odMeasured":0.42,"note":"with \"quotes\" and \\ and µ","flag":true,"none":null,"big":12345678901234567890}`,
	`{"k\u00e9y":1,"a\"b":2}`, `{"nested":{"x":[1,{"y":"}"}]},"arr":[1, 2 ,"]"]}`,
	`{"e":-1.5e+10,"z":0}`, `{"s":"\u2028"}`, `{"dup":1,"dup":2}`, "{\"\xb5\":\"\xb5\"}",
	// invalid or not an object
	`[]`, `"x"`, `1`, `null`, `{`, `{"a"}`, `{"a":}`, `{"a":tru}`, `{"a":1,}`, `{"a":1} x`, ``,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":-}`, `{"a":truex}`, `{"a":"\x"}`,
	`{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":[1,}`, `{"a":{"b"}}`, `{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":1}}`,
}

// checkDecoderAgrees decodes in with Data.UnmarshalJSON and with
// tokenize, encoding/json's reading of an object in order.
func checkDecoderAgrees(t *testing.T, in string) {
	var got Data
	err := got.UnmarshalJSON([]byte(in))
	want, wantErr := tokenize([]byte(in))
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: decoder error %v, tokenizer error %v", in, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%q: decoder %d fields, tokenizer %d", in, len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) {
			t.Fatalf("%q field %d: decoder %q=%s, tokenizer %q=%s", in, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	// Encoding gives valid, compact JSON that decodes to the same fields.
	enc, err := got.MarshalJSON()
	if err != nil || !json.Valid(enc) {
		t.Fatalf("%q: encoded %s, %v", in, enc, err)
	}
	var again Data
	if err := again.UnmarshalJSON(enc); err != nil || len(again) != len(got) {
		t.Fatalf("%q: re-decoding %s: %v", in, enc, err)
	}
}

// tokenize reads a JSON object in order with encoding/json's tokenizer:
// the reference the decoder is held to.
func tokenize(b []byte) (Data, error) {
	if !json.Valid(b) {
		return nil, &json.SyntaxError{}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, &json.UnmarshalTypeError{Value: jsonTypeName(b), Type: dataType}
	}
	out := Data{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, Field{Key: key, Value: raw})
	}
	return out, nil
}
