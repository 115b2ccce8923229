package pluginhost

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// PushRequestSize is the size of the message Push puts on the wire.
func TestPushRequestSizeIsTheWireSize(t *testing.T) {
	index := 3
	rows, err := EncodeRows([]sdk.Row{
		{Index: &index, Data: sdk.Data{{Key: "od", Value: []byte("0.42")}, {Key: "note", Value: []byte(`"` + strings.Repeat("x", 300) + `"`)}}},
		{Data: sdk.Data{{Key: "flag", Value: []byte("true")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	for name, req := range map[string]sdk.PushRequest{
		"bare": {UUID: "u"},
		"with trigger": {UUID: "run-7", Attempt: 300, Trigger: &sdk.StoredTrigger{
			Trigger: sdk.Trigger{UUID: "run-7", APIVersion: "OT-2/v1", Protocol: "Grow", Plate: &sdk.Plate{Rows: 8, Columns: 12},
				Spec: []byte(`{"volume": 20}`), Metadata: &sdk.Metadata{Source: "riffyn", Spec: []byte(`{"run": 1}`)}},
			CreatedAt: time.Now(), Source: "http", Status: "published", PublishedAt: &published,
		}},
	} {
		for _, r := range []EncodedRows{nil, rows} {
			msg, err := proto.Marshal(withRows(wire.ToPBPushRequest(&req), r))
			if err != nil {
				t.Fatal(err)
			}
			if got := PushRequestSize(req, r); got != len(msg) {
				t.Errorf("%s, %d bytes of rows: PushRequestSize %d, wire %d", name, len(r), got, len(msg))
			}
		}
	}
}

func TestRowSizesCutAnEncodingIntoRows(t *testing.T) {
	var rows []sdk.Row
	var want []int
	for i := range 4 {
		r := sdk.Row{Data: sdk.Data{{Key: "v", Value: []byte(`"` + strings.Repeat("y", i*100) + `"`)}}}
		one, err := EncodeRows([]sdk.Row{r})
		if err != nil {
			t.Fatal(err)
		}
		rows, want = append(rows, r), append(want, len(one))
	}
	all, err := EncodeRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	sizes, err := all.RowSizes()
	if err != nil || len(sizes) != len(want) {
		t.Fatalf("sizes %v, %v; want %v", sizes, err, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("sizes %v, want %v", sizes, want)
		}
	}
	if _, err := EncodedRows("\x12\x09short").RowSizes(); err == nil {
		t.Fatal("a truncated encoding was cut")
	}
}
