package pluginhost

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// PushRequestSize is the size in bytes of the Push message that carries
// req and rows (req.Rows, if any, counted as well: the message a plugin
// receives): the size that MaxMessageBytes bounds.
func PushRequestSize(req sdk.PushRequest, rows EncodedRows) int {
	return proto.Size(wire.ToPBPushRequest(&req)) + len(rows)
}

// RowSizes returns the size in bytes of each row of e, in order: e[:s[0]]
// is the encoding of the first row, and so on. Consecutive rows of an
// encoding are an encoding of their own.
func (e EncodedRows) RowSizes() ([]int, error) {
	var sizes []int
	for b := []byte(e); len(b) > 0; {
		num, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 || num != rowsField || typ != protowire.BytesType {
			return nil, errors.New("encoded rows: not a run of rows")
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
		if valLen < 0 {
			return nil, errors.New("encoded rows: truncated")
		}
		sizes = append(sizes, tagLen+valLen)
		b = b[tagLen+valLen:]
	}
	return sizes, nil
}
