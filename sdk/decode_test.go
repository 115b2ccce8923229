package sdk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/routinglayer/routing/sdk"
)

// dataBody is the shape of POST /data, decoded here as the gateway does.
type dataBody struct {
	UUID string    `json:"uuid"`
	Row  *sdk.Row  `json:"row"`
	Rows []sdk.Row `json:"rows"`
}

func TestDecodeStrictRefusesAmbiguousJSON(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		into      func() any
		wantField string
		wantIn    string
	}{
		{"raw 0xB5 in a row value", "{\"uuid\":\"a\",\"row\":{\"data\":{\"unit\":\"\xb5L\"}}}",
			func() any { return new(dataBody) }, "row.data.unit", "invalid UTF-8 at byte offset 35 (0xB5)"},
		{"raw 0xB5 after a byte order mark", "\xef\xbb\xbf{\"uuid\":\"a\",\"row\":{\"data\":{\"unit\":\"\xb5L\"}}}",
			func() any { return new(dataBody) }, "row.data.unit", "invalid UTF-8 at byte offset 38 (0xB5)"},
		{"raw 0xB5 in a member name", "{\"uuid\":\"a\",\"row\":{\"data\":{\"\xb5\":1}}}",
			func() any { return new(dataBody) }, "row.data", "invalid UTF-8 at byte offset 28 (0xB5)"},
		{"uuid twice", `{"uuid":"a","uuid":"b","row":{"data":{"keyOne":1}}}`,
			func() any { return new(dataBody) }, "uuid", `member "uuid" appears more than once`},
		{"index twice in a batch row", `{"uuid":"a","rows":[{"data":{"k":1}},{"index":1,"index":2,"data":{"k":2}}]}`,
			func() any { return new(dataBody) }, "rows[1].index", `member "index" appears more than once`},
		{"data key twice", `{"uuid":"a","row":{"data":{"keyOne":1,"keyOne":2}}}`,
			func() any { return new(dataBody) }, "row.data.keyOne", `member "keyOne" appears more than once`},
		{"protocol twice in a trigger", `{"apiVersion":"OT-2/v1alpha1","protocol":"A","protocol":"B","spec":{"volume":1}}`,
			func() any { return new(sdk.Trigger) }, "protocol", `member "protocol" appears more than once`},
		{"a spec member twice in a well", `{"apiVersion":"OT-2/v1alpha1","protocol":"A","spec":[{"volume":1},{"volume":1,"volume":2}]}`,
			func() any { return new(sdk.Trigger) }, "spec[1].volume", `member "volume" appears more than once`},
		{"metadata source twice", `{"apiVersion":"OT-2/v1alpha1","protocol":"A","spec":{"v":1},"metadata":{"source":"a","source":"b"}}`,
			func() any { return new(sdk.Trigger) }, "metadata.source", `member "source" appears more than once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdk.DecodeStrict([]byte(tt.body), tt.into())
			var ve *sdk.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 {
				t.Fatalf("got %v, want one field error", err)
			}
			if f := ve.Fields[0]; f.Field != tt.wantField || !strings.Contains(f.Reason, tt.wantIn) {
				t.Fatalf("got %q: %q, want %q containing %q", f.Field, f.Reason, tt.wantField, tt.wantIn)
			}
		})
	}
}

func TestDecodeStrictAcceptsAByteOrderMark(t *testing.T) {
	var body dataBody
	if err := sdk.DecodeStrict([]byte("\xef\xbb\xbf{\"uuid\":\"a\",\"row\":{\"data\":{\"unit\":\"µL\"}}}"), &body); err != nil {
		t.Fatal(err)
	}
	if body.UUID != "a" || body.Row.Data[0].Text() != "µL" {
		t.Fatalf("decoded %+v", body)
	}
	tr, err := sdk.DecodeTrigger([]byte("\xef\xbb\xbf" + `{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150}}`))
	if err != nil || tr.Protocol != "Probe" {
		t.Fatalf("trigger with a BOM: %+v, %v", tr, err)
	}
	// A BOM anywhere but at the start is not one.
	if err := sdk.DecodeStrict([]byte(" \xef\xbb\xbf{}"), &body); err == nil {
		t.Fatal("a BOM after whitespace was accepted")
	}
}
