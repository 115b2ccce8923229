package sdk

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// PushRequestSize is the size of the message PushEncoded puts on the wire.
func TestPushRequestSizeIsTheWireSize(t *testing.T) {
	index := 3
	rows, err := EncodeRows([]Row{
		{Index: &index, Data: Data{{Key: "od", Value: []byte("0.42")}, {Key: "note", Value: []byte(`"` + strings.Repeat("x", 300) + `"`)}}},
		{Data: Data{{Key: "flag", Value: []byte("true")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	for name, req := range map[string]PushRequest{
		"bare": {UUID: "u"},
		"with trigger": {UUID: "run-7", Attempt: 300, Trigger: &StoredTrigger{
			Trigger: Trigger{UUID: "run-7", APIVersion: "OT-2/v1", Protocol: "Grow", Plate: &Plate{Rows: 8, Columns: 12},
				Spec: []byte(`{"volume": 20}`), Metadata: &Metadata{Source: "riffyn", Spec: []byte(`{"run": 1}`)}},
			CreatedAt: time.Now(), Source: "http", Status: StatusPublished, PublishedAt: &published,
		}},
	} {
		for _, r := range []EncodedRows{nil, rows} {
			wire, err := proto.Marshal(withRows(toPBPushRequest(&req), r))
			if err != nil {
				t.Fatal(err)
			}
			if got := PushRequestSize(req, r); got != len(wire) {
				t.Errorf("%s, %d bytes of rows: PushRequestSize %d, wire %d", name, len(r), got, len(wire))
			}
		}
	}
}

func TestRowSizesCutAnEncodingIntoRows(t *testing.T) {
	var rows []Row
	var want []int
	for i := range 4 {
		r := Row{Data: Data{{Key: "v", Value: []byte(`"` + strings.Repeat("y", i*100) + `"`)}}}
		one, err := EncodeRows([]Row{r})
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
