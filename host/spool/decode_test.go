package spool

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/routinglayer/routing/sdk"
)

// Every body decodes to what sdk.DecodeStrict gives, rows and errors
// alike, whether or not the fast pass takes it.
func TestDecodeBodyIsDecodeStrict(t *testing.T) {
	bodies := []string{
		`{"uuid":"u1","rows":[{"index":0,"data":{"odMeasured":0.42,"note":"a\"b","flag":true,"none":null}},{"data":{"k":1.50e3}}]}`,
		"\xef\xbb\xbf" + `{"uuid":"u1","rows":[{"index":3,"data":{"k":"x"}}]}`,
		` { "uuid" : "u1" , "row" : { "data" : { "k" : "\u00e9\n" } , "index" : 7 } } `,
		`{"uuid":"u1","rows":[]}`,
		`{"uuid":"u1","rows":null}`,
		`{"uuid":"u1"}`,
		`{"uuid":"u1","rows":[{"index":0,"data":{}}]}`,
		`{"uuid":"u1","rows":[{"index":0}]}`,
		`{"uuid":"u1","rows":[{"index":-1,"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":1.0,"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":1e2,"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":99999999999999999999,"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":null,"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":"1","data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"index":0,"data":null}]}`,
		`{"uuid":"u1","rows":[{"index":0,"data":[1]}]}`,
		`{"uuid":"u1","rows":[{"index":0,"data":{"k":{"nested":1}}}]}`,
		`{"uuid":"u1","rows":[{"index":0,"data":{"k":1,"k":2}}]}`,
		`{"uuid":"u1","uuid":"u2","rows":[{"data":{"k":1}}]}`,
		`{"UUID":"u1","rows":[{"data":{"k":1}}]}`,
		`{"uuid":"u1","Rows":[{"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"Data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"data":{"k":1},"extra":2}]}`,
		`{"uuid":"u1","extra":1}`,
		`{"uuid":null,"rows":[{"data":{"k":1}}]}`,
		`{"uuid":7,"rows":[{"data":{"k":1}}]}`,
		`{"uuid":"u1","rows":[{"data":{"k":1}}]} {}`,
		`{"uuid":"u1","rows":[{"data":{"k":1}}]`,
		`{"uuid":"u1","rows":[{"data":{"k":"` + "\xff" + `"}}]}`,
		`{"uuid":"u1","rows":[{"data":{"k\u0041y":1}}]}`,
		`[1,2]`,
		``,
		`{"uuid":"u1","row":{"data":{"k":1}},"rows":[{"data":{"k":2}}]}`,
	}
	var many strings.Builder
	many.WriteString(`{"uuid":"bench","rows":[`)
	for i := range 100 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"index":%d,"data":{"well":"A%d","od600":0.%d,"temperature":37.02,"flag":%t,"note":null}}`, i, i, i, i%7 == 0)
	}
	many.WriteString(`]}`)
	bodies = append(bodies, many.String())
	for _, i := range []int{0, 1, 2, 3, 6, 7, 8, len(bodies) - 1} {
		var v dataBody
		if err := readBody([]byte(bodies[i]), &v); err != nil {
			t.Errorf("%s: not taken by the fast pass: %v", bodies[i], err)
		}
	}
	for _, b := range bodies {
		var fast, strict dataBody
		errFast := decodeBody([]byte(b), &fast)
		errStrict := sdk.DecodeStrict([]byte(b), &strict)
		if fmt.Sprint(errFast) != fmt.Sprint(errStrict) {
			t.Errorf("%s:\n decodeBody: %v\n DecodeStrict: %v", b, errFast, errStrict)
			continue
		}
		if errStrict == nil && !reflect.DeepEqual(fast, strict) {
			t.Errorf("%s:\n decodeBody:   %+v\n DecodeStrict: %+v", b, fast, strict)
		}
	}
}

func BenchmarkDecodeBody(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"uuid":"bench","rows":[`)
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"index":%d,"data":{"well":"A%d","od600":0.%d,"temperature":37.02,"gain":100,"flag":%t,"note":null,"reader":"Tecan Spark","timestamp":"2026-11-24T10:00:00Z"}}`, i, i, i, i%7 == 0)
	}
	body.WriteString(`]}`)
	raw := []byte(body.String())
	for _, c := range []struct {
		name   string
		decode func([]byte, *dataBody) error
	}{{"fast", decodeBody}, {"DecodeStrict", func(b []byte, v *dataBody) error { return sdk.DecodeStrict(b, v) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v dataBody
				if err := c.decode(raw, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
