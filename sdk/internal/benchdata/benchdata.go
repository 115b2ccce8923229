// Package benchdata makes the inputs of the SDK's benchmarks: request
// bodies as the data-gateway and the control-tower receive them, and the
// Push a pusher receives.
package benchdata

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk"
)

// RowCounts are the batch sizes of the row and push benchmarks.
var RowCounts = []int{1, 100, 1000}

// DataBody mirrors host/spool's dataBody, the body of POST /data and
// POST /data/batch.
type DataBody struct {
	UUID string    `json:"uuid"`
	Row  *sdk.Row  `json:"row"`
	Rows []sdk.Row `json:"rows"`
}

// well names well i of an 8-row plate, indexed column-first from the
// top left: 0 is A1, 1 is B1, 8 is A2.
func well(i int) string {
	return string(rune('A'+i%8)) + strconv.Itoa(i/8+1)
}

// BatchBody returns a POST /data/batch body of n plate-reader rows,
// each with 8 fields: strings, numbers, a boolean and a null.
func BatchBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"uuid":"3f6c2a9e-8b1d-4e5f-9a7c-0d1e2f3a4b5c","rows":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		w := i % 96
		fmt.Fprintf(&sb, `{"index":%d,"data":{"well":%q,"od600":%.4f,"temperature":%.2f,"gain":100,"flag":%t,"note":null,"reader":"Tecan Spark","timestamp":"2026-11-24T10:%02d:%02dZ"}}`,
			w, well(w), 0.05+float64(i%97)*0.0123, 36.9+float64(i%7)*0.03, i%13 == 0, (i/60)%60, i%60)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// DecodeBatch decodes and validates a batch body with the SDK calls
// host/spool's intake makes: DecodeStrict into the body, sdk.ValidUUID, then
// Row.Validate for each row.
func DecodeBatch(raw []byte) ([]sdk.Row, error) {
	var body DataBody
	if err := sdk.DecodeStrict(raw, &body); err != nil {
		return nil, err
	}
	if !sdk.ValidUUID(body.UUID) {
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

// Rows returns the n rows of BatchBody(n), decoded.
func Rows(tb testing.TB, n int) []sdk.Row {
	tb.Helper()
	rows, err := DecodeBatch(BatchBody(n))
	if err != nil {
		tb.Fatal(err)
	}
	if len(rows) != n {
		tb.Fatalf("decoded %d rows, want %d", len(rows), n)
	}
	return rows
}

// TriggerBody returns an OT-2 trigger for a 96-well plate (8x12) with
// one small spec object per well and Riffyn metadata, as a watcher or a
// client would POST it.
func TriggerBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"uuid":"riffyn-run-5f2a9c1e7b3d","apiVersion":"OT-2/v1alpha1","protocol":"SerialDilution","plate":{"rows":8,"columns":12},"spec":[`)
	for i := range 96 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"volume":%d,"source":%q,"mixCycles":%d,"tipReuse":%t}`, 200-(i/8)*15, well(i%8), 3, i%8 != 0)
	}
	sb.WriteString(`],"metadata":{"source":"riffyn","spec":{"experimentId":"exp-2026-11-0042","activityId":"act-7731","runId":"run-5f2a9c1e7b3d"}}}`)
	return []byte(sb.String())
}

// sdk.Trigger returns TriggerBody, decoded and validated.
func Trigger(tb testing.TB) sdk.Trigger {
	tb.Helper()
	t, err := sdk.DecodeTrigger(TriggerBody())
	if err != nil {
		tb.Fatal(err)
	}
	if t.Plate == nil || t.Plate.Wells() != 96 {
		tb.Fatalf("plate = %+v, want 8x12", t.Plate)
	}
	return t
}

// sdk.PushRequest returns a push of n rows with a stored 96-well trigger,
// as the data-gateway's dispatcher sends it to a pusher.
func PushRequest(tb testing.TB, n int) sdk.PushRequest {
	tb.Helper()
	created := time.Date(2026, 11, 24, 9, 58, 12, 345678000, time.UTC)
	published := created.Add(850 * time.Millisecond)
	return sdk.PushRequest{
		UUID: "3f6c2a9e-8b1d-4e5f-9a7c-0d1e2f3a4b5c",
		Rows: Rows(tb, n),
		Trigger: &sdk.StoredTrigger{
			Trigger:     Trigger(tb),
			CreatedAt:   created,
			Source:      "watcher:riffyn",
			Status:      "published",
			PublishedAt: &published,
		},
		Attempt: 1,
	}
}
