package sdk_test

// Micro-benchmarks of the contract's hot paths: decoding and validating a
// batch of rows as the data-gateway receives it (the decoding of Data
// keeps key order and raw value bytes), and decoding and validating one
// trigger as the control-tower receives it. The Push encoding's are in
// internal/wire.
//
// Run: go test -run '^$' -bench . -benchmem

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/benchdata"
)

// Sinks keep the compiler from dropping the benchmarked work.
var (
	benchSinkRows    []sdk.Row
	benchSinkTrigger sdk.Trigger
)

// BenchmarkRowBatchDecodeValidate decodes and validates a POST /data/batch
// body the way host/spool's intake does (DecodeStrict, ValidUUID,
// Row.Validate per row).
func BenchmarkRowBatchDecodeValidate(b *testing.B) {
	for _, n := range benchdata.RowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			body := benchdata.BatchBody(n)
			if rows, err := benchdata.DecodeBatch(body); err != nil || len(rows) != n {
				b.Fatalf("setup: %d rows, %v; want %d valid rows", len(rows), err, n)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rows, err := benchdata.DecodeBatch(body)
				if err != nil {
					b.Fatal(err)
				}
				benchSinkRows = rows
			}
		})
	}
}

// BenchmarkValidateRows measures validation alone (Row.Validate of each
// row) of already-decoded rows, to separate its cost from JSON decoding.
func BenchmarkValidateRows(b *testing.B) {
	for _, n := range benchdata.RowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			rows := benchdata.Rows(b, n)
			b.ReportAllocs()
			for b.Loop() {
				for i := range rows {
					if err := rows[i].Validate(); err != nil {
						b.Fatal(err)
					}
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
	inputs := []input{{"ot2-96well", benchdata.TriggerBody()}}
	for _, name := range []string{"plate-transfer", "bioreactor"} {
		body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, input{"testdata=" + name, body})
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			if _, err := sdk.DecodeTrigger(in.body); err != nil {
				b.Fatalf("setup: %v", err)
			}
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			for b.Loop() {
				t, err := sdk.DecodeTrigger(in.body)
				if err != nil {
					b.Fatal(err)
				}
				benchSinkTrigger = t
			}
		})
	}
}
