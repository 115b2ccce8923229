package sdk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routinglayer/routing/sdk"
)

func TestDecodeTriggerSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) != 4 {
		t.Fatalf("want 4 sample triggers in testdata, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := sdk.DecodeTrigger(data)
			if err != nil {
				t.Fatalf("sample rejected: %v", err)
			}
			if tr.APIVersion == "" || tr.Protocol == "" || len(tr.Spec) == 0 {
				t.Fatalf("decoded trigger lost fields: %+v", tr)
			}
		})
	}
}

func TestDecodeTriggerRejects(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string
		wantIn    string
	}{
		{"malformed JSON", `{"apiVersion": "OT-2/v1alpha1",`, "", "truncated"},
		{"syntax error", `{"apiVersion" "OT-2/v1alpha1"}`, "", "malformed JSON"},
		{"empty body", ``, "", "empty"},
		{"two values", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1}} {}`, "", "exactly one"},
		{"not an object", `[1,2]`, "", "must be an object"},
		{"unknown field", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"colour":"red"}`, "colour", "unknown field"},
		{"apiVersion wrong type", `{"apiVersion":2,"protocol":"P","spec":{"a":1}}`, "apiVersion", "must be a string, not number"},
		{"plate rows wrong type", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":"8","columns":1},"spec":[{}]}`, "plate.rows", "must be an integer"},
		{"plate rows fractional", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":1.5,"columns":1},"spec":[{}]}`, "plate.rows", "must be an integer"},
		{"missing apiVersion", `{"protocol":"P","spec":{"a":1}}`, "apiVersion", "is required"},
		{"bad apiVersion", `{"apiVersion":"OT-2","protocol":"P","spec":{"a":1}}`, "apiVersion", "<api>/v<N>"},
		{"apiVersion v0", `{"apiVersion":"OT-2/v0","protocol":"P","spec":{"a":1}}`, "apiVersion", "<api>/v<N>"},
		{"apiVersion too deep", `{"apiVersion":"a/v1/b/c","protocol":"P","spec":{"a":1}}`, "apiVersion", "<api>/v<N>"},
		{"apiVersion space", `{"apiVersion":"OT 2/v1","protocol":"P","spec":{"a":1}}`, "apiVersion", "<api>/v<N>"},
		{"missing protocol", `{"apiVersion":"OT-2/v1alpha1","spec":{"a":1}}`, "protocol", "is required"},
		{"blank protocol", `{"apiVersion":"OT-2/v1alpha1","protocol":"  ","spec":{"a":1}}`, "protocol", "is required"},
		{"missing spec", `{"apiVersion":"OT-2/v1alpha1","protocol":"P"}`, "spec", "is required"},
		{"null spec", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":null}`, "spec", "is required"},
		{"empty spec object", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{}}`, "spec", "must not be empty"},
		{"empty spec array", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":[]}`, "spec", "must not be empty"},
		{"scalar spec", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":"fast"}`, "spec", "object or an array"},
		{"well not object", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":[{"v":1},2]}`, "spec[1]", "must be an object"},
		{"plate spec mismatch", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":4,"columns":1},"spec":[{"v":1},{"v":2}]}`, "spec", "has 2 wells but plate 4x1 has 4"},
		{"plate with object spec", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":1,"columns":1},"spec":{"v":1}}`, "spec", "array of 1 well"},
		{"plate zero rows", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":0,"columns":1},"spec":[{"v":1}]}`, "plate.rows", "between 1 and"},
		{"plate negative columns", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":1,"columns":-3},"spec":[{"v":1}]}`, "plate.columns", "between 1 and"},
		{"bad uuid", `{"uuid":"a b","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1}}`, "uuid", "1-64 characters"},
		{"long uuid", `{"uuid":"` + strings.Repeat("a", 65) + `","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1}}`, "uuid", "1-64 characters"},
		{"metadata without source", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"metadata":{"spec":{}}}`, "metadata.source", "is required"},
		{"metadata scalar spec", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"metadata":{"source":"x","spec":3}}`, "metadata.spec", "object or an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdk.DecodeTrigger([]byte(tt.body))
			assertFieldError(t, err, tt.wantField, tt.wantIn)
		})
	}
}

func TestTriggerAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"device suffix", `{"apiVersion":"ChiBio/v1alpha1/ChiBio1","protocol":"Bioreactor","spec":{"od":0.4}}`},
		{"lower case", `{"apiVersion":"chibio/v2","protocol":"Bioreactor","spec":{"od":0.4}}`},
		{"client uuid", `{"uuid":"run_42-A","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1}}`},
		{"array without plate", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":[{"a":1},{"a":2}]}`},
		{"96-well plate", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":8,"columns":12},"spec":[` + strings.TrimSuffix(strings.Repeat(`{"v":1},`, 96), ",") + `]}`},
		{"metadata", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"metadata":{"source":"riffyn","spec":[{"runId":"r1"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sdk.DecodeTrigger([]byte(tt.body)); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestRowValidation(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string
		wantIn    string
	}{
		{"valid", `{"index":0,"data":{"keyOne":1,"keyTwo":"2","flag":true,"none":null}}`, "", ""},
		{"valid without index", `{"data":{"odMeasured":0.42}}`, "", ""},
		{"missing data", `{"index":0}`, "data", "is required"},
		{"empty data", `{"data":{}}`, "data", "must not be empty"},
		{"data array", `{"data":[1]}`, "data", "must be an object, not array"},
		{"snake key", `{"data":{"Key_One":1}}`, "data.Key_One", "camelCase"},
		{"upper first", `{"data":{"KeyOne":1}}`, "data.KeyOne", "camelCase"},
		{"nested object", `{"data":{"keyOne":{"a":1}}}`, "data.keyOne", "not an object"},
		{"nested array", `{"data":{"keyOne":[1]}}`, "data.keyOne", "not an array"},
		{"duplicate key", `{"data":{"keyOne":1,"keyOne":2}}`, "data.keyOne", "more than once"},
		{"negative index", `{"index":-1,"data":{"a":1}}`, "index", ">= 0"},
		{"fractional index", `{"index":1.5,"data":{"a":1}}`, "index", "must be an integer"},
		{"string index", `{"index":"1","data":{"a":1}}`, "index", "must be an integer"},
		{"unknown field", `{"data":{"a":1},"extra":1}`, "extra", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r sdk.Row
			err := sdk.DecodeStrict([]byte(tt.body), &r)
			if err == nil {
				err = r.Validate()
			}
			if tt.wantField == "" && tt.wantIn == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			assertFieldError(t, err, tt.wantField, tt.wantIn)
		})
	}
}

func TestRowValidateNamesTheField(t *testing.T) {
	var body struct {
		Rows []sdk.Row `json:"rows"`
	}
	err := sdk.DecodeStrict([]byte(`{"rows":[{"data":{"a":1}},{"data":{"a":2}},{"data":{"b":3}},{"data":{"Key_One":1}}]}`), &body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := body.Rows[i].Validate(); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	assertFieldError(t, body.Rows[3].Validate(), "data.Key_One", "key must be camelCase")
}

func TestDataKeepsOrderAndBytes(t *testing.T) {
	in := `{"zeta": 1.50, "alpha":"x", "mid" : true, "nil": null, "big": 12345678901234567890}`
	var d sdk.Data
	if err := d.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatal(err)
	}
	out, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"zeta":1.50,"alpha":"x","mid":true,"nil":null,"big":12345678901234567890}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	f, ok := d.Get("alpha")
	if !ok || f.Text() != "x" {
		t.Fatalf("Get(alpha) = %+v, %v", f, ok)
	}
	if f, _ := d.Get("zeta"); f.Text() != "1.50" {
		t.Fatalf("Text of number = %q", f.Text())
	}
	if f, _ := d.Get("nil"); f.Text() != "" {
		t.Fatalf("Text of null = %q", f.Text())
	}
}

func TestErrorKinds(t *testing.T) {
	base := errors.New("boom")
	if err := sdk.Permanent(base); !errors.Is(err, sdk.ErrPermanent) || !errors.Is(err, base) || err.Error() != "boom" {
		t.Fatalf("Permanent: %v", err)
	}
	if sdk.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) must be nil")
	}
	if err := sdk.Skip("not mine"); !errors.Is(err, sdk.ErrSkipped) || errors.Is(err, sdk.ErrPermanent) {
		t.Fatalf("Skip: %v", err)
	}
}

// assertFieldError checks that err is a *ValidationError with a field
// named wantField whose reason contains wantIn.
func assertFieldError(tb testing.TB, err error, wantField, wantIn string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("accepted, want error on %q containing %q", wantField, wantIn)
	}
	if !errors.Is(err, sdk.ErrInvalid) {
		tb.Fatalf("error %v does not match ErrInvalid", err)
	}
	var ve *sdk.ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("error %T is not a *ValidationError", err)
	}
	for _, f := range ve.Fields {
		if f.Field == wantField && strings.Contains(f.Reason, wantIn) {
			return
		}
	}
	tb.Fatalf("no field error %q containing %q in %q", wantField, wantIn, err)
}
