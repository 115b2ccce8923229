package sdk

import (
	"encoding/json"
	"testing"
)

// The one-pass scanner and encoding/json's tokenizer agree on every
// input: same fields, same raw values, same rejections.
func TestDataScannerAgreesWithTokenizer(t *testing.T) {
	for _, in := range dataInputs {
		checkScannerAgrees(t, in)
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

func FuzzDataScanner(f *testing.F) {
	for _, in := range dataInputs {
		f.Add(in)
	}
	f.Fuzz(checkScannerAgrees)
}

var dataInputs = []string{
	`{}`, ` { } `, `{"a":1}`, "{\n \"a\" : 1 ,\t\"b\":\"x\"\r\n}",
	`{"odMeasured":0.42,"note":"with \"quotes\" and \\ and µ","flag":true,"none":null,"big":12345678901234567890}`,
	`{"k\u00e9y":1,"a\"b":2}`, `{"nested":{"x":[1,{"y":"}"}]},"arr":[1, 2 ,"]"]}`,
	`{"e":-1.5e+10,"z":0}`, `{"s":"\u2028"}`, `{"dup":1,"dup":2}`,
	// invalid or not an object
	`[]`, `"x"`, `1`, `null`, `{`, `{"a"}`, `{"a":}`, `{"a":tru}`, `{"a":1,}`, `{"a":1} x`, ``,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":1e}`, `{"a":-}`, `{"a":truex}`, `{"a":"\x"}`,
	`{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":[1,}`, `{"a":{"b"}}`, `{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":1}}`,
}

// checkScannerAgrees decodes in with the scanner and with the tokenizer:
// what the scanner accepts must be valid JSON that the tokenizer decodes
// to the same fields (what it refuses goes to the tokenizer).
func checkScannerAgrees(t *testing.T, in string) {
	fast, ok := scanObject([]byte(in))
	if !ok {
		return
	}
	if !json.Valid([]byte(in)) {
		t.Fatalf("%q: the scanner accepted invalid JSON", in)
	}
	var slow Data
	if err := slow.unmarshalSlow([]byte(in)); err != nil {
		t.Fatalf("%q: the scanner accepted what the tokenizer refuses: %v", in, err)
	}
	if len(fast) != len(slow) {
		t.Fatalf("%q: scanner %d fields, tokenizer %d", in, len(fast), len(slow))
	}
	for i := range fast {
		if fast[i].Key != slow[i].Key || string(fast[i].Value) != string(slow[i].Value) {
			t.Fatalf("%q field %d: scanner %q=%s, tokenizer %q=%s", in, i, fast[i].Key, fast[i].Value, slow[i].Key, slow[i].Value)
		}
	}
	// Encoding gives valid, compact JSON that decodes to the same fields.
	enc, err := fast.MarshalJSON()
	if err != nil || !json.Valid(enc) {
		t.Fatalf("%q: encoded %s, %v", in, enc, err)
	}
	var again Data
	if err := again.UnmarshalJSON(enc); err != nil || len(again) != len(fast) {
		t.Fatalf("%q: re-decoding %s: %v", in, enc, err)
	}
}

var rowsInputs = []string{
	`[]`, ` [ ] `, `[{"index":0,"data":{"a":1}},{"data":{"b":"x"}},{"index":12,"data":{}}]`,
	`[{"data":{"a":1},"index":3}]`, `[{}]`, "[\n {\"index\" : 1 , \"data\" : {\"k\":true} } ]",
	`[{"index":-0,"data":{"a":null}}]`,
	// handed to encoding/json (or refused by it)
	`[{"index":1.5,"data":{}}]`, `[{"index":1e2}]`, `[{"index":null}]`, `[{"Index":1}]`, `[{"data":null}]`,
	`[{"data":{},"data":{"a":1}}]`, `[{"index":1 "data":{}}]`, `[{"index":1,}]`, `[{"other":1}]`,
	`[{"index":99999999999999999999}]`, `[{"data":{"a":1}}`, `[{"data":{"a":1}}] x`, `{}`, `[1]`, `null`, ``,
}

func TestDecodeRowsJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range rowsInputs {
		checkRowsAgree(t, in)
	}
}

func FuzzDecodeRowsJSON(f *testing.F) {
	for _, in := range rowsInputs {
		f.Add(in)
	}
	f.Fuzz(checkRowsAgree)
}

// checkRowsAgree: what scanRows accepts, encoding/json decodes to the same
// rows; DecodeRowsJSON fails exactly when encoding/json does.
func checkRowsAgree(t *testing.T, in string) {
	var want []Row
	wantErr := json.Unmarshal([]byte(in), &want)
	got, err := DecodeRowsJSON([]byte(in))
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: DecodeRowsJSON error %v, encoding/json error %v", in, err, wantErr)
	}
	fast, ok := scanRows([]byte(in))
	if !ok {
		return
	}
	if wantErr != nil {
		t.Fatalf("%q: scanRows accepted what encoding/json refuses: %v", in, wantErr)
	}
	a, _ := json.Marshal(fast)
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if string(a) != string(w) || string(g) != string(w) {
		t.Fatalf("%q: scanRows %s, DecodeRowsJSON %s, encoding/json %s", in, a, g, w)
	}
	if len(fast) != len(want) {
		t.Fatalf("%q: %d rows, want %d", in, len(fast), len(want))
	}
	for k := range fast {
		if (fast[k].Data == nil) != (want[k].Data == nil) {
			t.Fatalf("%q row %d: data nil %v, want %v", in, k, fast[k].Data == nil, want[k].Data == nil)
		}
	}
}
