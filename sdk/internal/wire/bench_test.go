package wire

// Micro-benchmarks of a Push crossing the plugin boundary: its conversion
// to the protobuf message and marshalling (the host's side), and back (the
// plugin's).
//
// Run: go test -run '^$' -bench . -benchmem

import (
	"encoding/json"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/benchdata"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// Sinks keep the compiler from dropping the benchmarked work.
var (
	benchSinkBytes []byte
	benchSinkPush  sdk.PushRequest
)

// BenchmarkPushEncode converts a PushRequest to its protobuf message and
// marshals it: the host side of every Push across the plugin boundary.
// Bytes are the marshalled size.
func BenchmarkPushEncode(b *testing.B) {
	for _, n := range benchdata.RowCounts {
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			req, wire := benchWire(b, n)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := proto.Marshal(ToPBPushRequest(&req))
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
	for _, n := range benchdata.RowCounts {
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
func benchWire(b *testing.B, n int) (sdk.PushRequest, []byte) {
	req := benchdata.PushRequest(b, n)
	wire, err := proto.Marshal(ToPBPushRequest(&req))
	if err != nil {
		b.Fatal(err)
	}
	return req, wire
}

func benchPushDecode(b *testing.B, wire []byte) sdk.PushRequest {
	var msg pluginpb.PushRequest
	if err := proto.Unmarshal(wire, &msg); err != nil {
		b.Fatal(err)
	}
	return FromPBPushRequest(&msg)
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
