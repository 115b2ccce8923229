package sdk

// Micro-benchmarks of the SDK's hot paths: decoding and validating a batch
// of rows as the data-gateway receives it, decoding and validating one
// trigger as the control-tower receives it, and encoding (and decoding) a
// Push as it crosses the plugin boundary.
//
// Run: go test -run '^$' -bench . -benchmem

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// Sinks keep the compiler from dropping the benchmarked work.
var (
	benchSinkRows    []Row
	benchSinkTrigger Trigger
	benchSinkBytes   []byte
	benchSinkPush    PushRequest
)

// benchRowCounts are the batch sizes of the row and push benchmarks.
var benchRowCounts = []int{1, 100, 1000}

// benchDataBody mirrors host/gateway's dataBody, the body of POST /data and
// POST /data/batch.
type benchDataBody struct {
	UUID string `json:"uuid"`
	Row  *Row   `json:"row"`
	Rows []Row  `json:"rows"`
}

// benchWell names well i of an 8-row plate, indexed column-first from the
// top left: 0 is A1, 1 is B1, 8 is A2.
func benchWell(i int) string {
	return string(rune('A'+i%8)) + strconv.Itoa(i/8+1)
}

// benchBatchBody returns a POST /data/batch body of n plate-reader rows,
// each with 8 fields: strings, numbers, a boolean and a null.
func benchBatchBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"uuid":"3f6c2a9e-8b1d-4e5f-9a7c-0d1e2f3a4b5c","rows":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		w := i % 96
		fmt.Fprintf(&sb, `{"index":%d,"data":{"well":%q,"od600":%.4f,"temperature":%.2f,"gain":100,"flag":%t,"note":null,"reader":"Tecan Spark","timestamp":"2026-11-24T10:%02d:%02dZ"}}`,
			w, benchWell(w), 0.05+float64(i%97)*0.0123, 36.9+float64(i%7)*0.03, i%13 == 0, (i/60)%60, i%60)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// benchDecodeBatch decodes and validates a batch body with the SDK calls
// host/gateway's intake makes: DecodeStrict into the body, ValidUUID, then
// Row.Validate for each row.
func benchDecodeBatch(raw []byte) ([]Row, error) {
	var body benchDataBody
	if err := DecodeStrict(raw, &body); err != nil {
		return nil, err
	}
	if !ValidUUID(body.UUID) {
		return nil, errors.New("invalid uuid " + body.UUID)
	}
	if body.Row != nil || len(body.Rows) == 0 {
		return nil, errors.New("batch body must hold rows and no row")
	}
	for i := range body.Rows {
		if err := body.Rows[i].Validate(); err != nil {
			return nil, fmt.Errorf("rows[%d]: %w", i, err)
		}
	}
	return body.Rows, nil
}

// benchRows returns the n rows of benchBatchBody(n), decoded.
func benchRows(tb testing.TB, n int) []Row {
	tb.Helper()
	rows, err := benchDecodeBatch(benchBatchBody(n))
	if err != nil {
		tb.Fatal(err)
	}
	if len(rows) != n {
		tb.Fatalf("decoded %d rows, want %d", len(rows), n)
	}
	return rows
}

// benchTriggerBody returns an OT-2 trigger for a 96-well plate (8x12) with
// one small spec object per well and Riffyn metadata, as a watcher or a
// client would POST it.
func benchTriggerBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"uuid":"riffyn-run-5f2a9c1e7b3d","apiVersion":"OT-2/v1alpha1","protocol":"SerialDilution","plate":{"rows":8,"columns":12},"spec":[`)
	for i := range 96 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"volume":%d,"source":%q,"mixCycles":%d,"tipReuse":%t}`, 200-(i/8)*15, benchWell(i%8), 3, i%8 != 0)
	}
	sb.WriteString(`],"metadata":{"source":"riffyn","spec":{"experimentId":"exp-2026-11-0042","activityId":"act-7731","runId":"run-5f2a9c1e7b3d"}}}`)
	return []byte(sb.String())
}

// benchTrigger returns benchTriggerBody, decoded and validated.
func benchTrigger(tb testing.TB) Trigger {
	tb.Helper()
	t, err := DecodeTrigger(benchTriggerBody())
	if err != nil {
		tb.Fatal(err)
	}
	if t.Plate == nil || t.Plate.Wells() != 96 {
		tb.Fatalf("plate = %+v, want 8x12", t.Plate)
	}
	return t
}

// benchPushRequest returns a push of n rows with a stored 96-well trigger,
// as the data-gateway's dispatcher sends it to a pusher.
func benchPushRequest(tb testing.TB, n int) PushRequest {
	tb.Helper()
	created := time.Date(2026, 11, 24, 9, 58, 12, 345678000, time.UTC)
	published := created.Add(850 * time.Millisecond)
	return PushRequest{
		UUID: "3f6c2a9e-8b1d-4e5f-9a7c-0d1e2f3a4b5c",
		Rows: benchRows(tb, n),
		Trigger: &StoredTrigger{
			Trigger:     benchTrigger(tb),
			CreatedAt:   created,
			Source:      "watcher:riffyn",
			Status:      StatusPublished,
			PublishedAt: &published,
		},
		Attempt: 1,
	}
}

// BenchmarkRowBatchDecodeValidate decodes and validates a POST /data/batch
// body the way host/gateway's intake does (DecodeStrict, ValidUUID,
// Row.Validate per row).
func BenchmarkRowBatchDecodeValidate(b *testing.B) {
	for _, n := range benchRowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			body := benchBatchBody(n)
			if rows, err := benchDecodeBatch(body); err != nil || len(rows) != n {
				b.Fatalf("setup: %d rows, %v; want %d valid rows", len(rows), err, n)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rows, err := benchDecodeBatch(body)
				if err != nil {
					b.Fatal(err)
				}
				benchSinkRows = rows
			}
		})
	}
}

// BenchmarkValidateRows measures validation alone (ValidateRows) of
// already-decoded rows, to separate its cost from JSON decoding.
func BenchmarkValidateRows(b *testing.B) {
	for _, n := range benchRowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			rows := benchRows(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if err := ValidateRows(rows); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeTrigger decodes and validates one trigger with
// DecodeTrigger (DecodeStrict + Trigger.Validate): a 96-well OT-2 trigger,
// and the sample triggers of testdata.
func BenchmarkDecodeTrigger(b *testing.B) {
	type input struct {
		name string
		body []byte
	}
	inputs := []input{{"ot2-96well", benchTriggerBody()}}
	for _, name := range []string{"plate-transfer", "bioreactor"} {
		body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, input{"testdata=" + name, body})
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			if _, err := DecodeTrigger(in.body); err != nil {
				b.Fatalf("setup: %v", err)
			}
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			for b.Loop() {
				t, err := DecodeTrigger(in.body)
				if err != nil {
					b.Fatal(err)
				}
				benchSinkTrigger = t
			}
		})
	}
}

// BenchmarkPushEncode converts a PushRequest to its protobuf message and
// marshals it: the host side of every Push across the plugin boundary.
// Bytes are the marshalled size.
func BenchmarkPushEncode(b *testing.B) {
	for _, n := range benchRowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			req, wire := benchWire(b, n)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := proto.Marshal(toPBPushRequest(&req))
				if err != nil {
					b.Fatal(err)
				}
				benchSinkBytes = out
			}
		})
	}
}

// BenchmarkPushDecode unmarshals a marshalled PushRequest and converts it
// back: the plugin side of every Push. Bytes are the marshalled size.
func BenchmarkPushDecode(b *testing.B) {
	for _, n := range benchRowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			req, wire := benchWire(b, n)
			got := benchPushDecode(b, wire)
			if benchJSON(b, got) != benchJSON(b, req) {
				b.Fatalf("setup: push changed in the round trip:\n got %s\nwant %s", benchJSON(b, got), benchJSON(b, req))
			}
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				benchSinkPush = benchPushDecode(b, wire)
			}
		})
	}
}

// benchWire returns the push request of n rows and its marshalled form.
func benchWire(b *testing.B, n int) (PushRequest, []byte) {
	req := benchPushRequest(b, n)
	wire, err := proto.Marshal(toPBPushRequest(&req))
	if err != nil {
		b.Fatal(err)
	}
	return req, wire
}

func benchPushDecode(b *testing.B, wire []byte) PushRequest {
	var msg pluginpb.PushRequest
	if err := proto.Unmarshal(wire, &msg); err != nil {
		b.Fatal(err)
	}
	return fromPBPushRequest(&msg)
}

// benchJSON encodes v for comparisons in setup.
func benchJSON(tb testing.TB, v any) string {
	tb.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// BenchmarkStoredRowsDecode decodes rows as a JSON array (spools written
// before rows were kept encoded hold them so): with DecodeRowsJSON and,
// for comparison, with json.Unmarshal.
func BenchmarkStoredRowsDecode(b *testing.B) {
	stored, err := json.Marshal(benchRows(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("DecodeRowsJSON", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stored)))
		for b.Loop() {
			rows, err := DecodeRowsJSON(stored)
			if err != nil || len(rows) != 100 {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(stored)))
		for b.Loop() {
			var rows []Row
			if err := json.Unmarshal(stored, &rows); err != nil || len(rows) != 100 {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
}
