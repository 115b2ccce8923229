package pluginhost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// EncodeRows writes what proto.Marshal writes for the same rows.
func TestEncodeRowsIsProtoMarshal(t *testing.T) {
	idx := func(i int) *int { return &i }
	cases := [][]sdk.Row{
		nil,
		{{}},
		{{Index: idx(0), Data: sdk.Data{{Key: "k", Value: json.RawMessage(`1`)}}}},
		{{Index: idx(-3), Data: sdk.Data{{Key: "", Value: nil}, {Key: "odMeasured", Value: json.RawMessage(`0.42`)}}}},
		{{Index: idx(math.MaxInt), Data: sdk.Data{{Key: "a", Value: json.RawMessage(`"` + string(bytes.Repeat([]byte("x"), 300)) + `"`)}}}},
	}
	var many []sdk.Row
	for i := range 200 {
		r := sdk.Row{Data: sdk.Data{{Key: fmt.Sprintf("key%d", i), Value: json.RawMessage(fmt.Sprint(i))}, {Key: "note", Value: json.RawMessage(`null`)}}}
		if i%3 != 0 {
			r.Index = idx(i * 1000)
		}
		many = append(many, r)
	}
	cases = append(cases, many)
	for i, rows := range cases {
		want, err := proto.Marshal(&pluginpb.PushRequest{Rows: wire.ToPBRows(rows)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeRows(rows)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("case %d: EncodeRows %x (%v), proto.Marshal %x", i, got, err, want)
		}
	}
}
