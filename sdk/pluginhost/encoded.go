package pluginhost

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// EncodedRows are rows in the plugin protocol's own encoding (a run of
// PushRequest.rows fields), as EncodeRows makes them. A host keeps rows
// this way (the data-gateway's spool does) and hands them to
// PusherClient.Push without decoding and re-encoding them. Encodings
// concatenate: append(a, b...) holds a's rows, then b's.
type EncodedRows []byte

// rowsField is the number of PushRequest's repeated rows field, which an
// encoding is a run of.
const rowsField protowire.Number = 2

// EncodeRows encodes rows for PusherClient.Push.
func EncodeRows(rows []sdk.Row) (EncodedRows, error) {
	b, err := proto.Marshal(&pluginpb.PushRequest{Rows: wire.ToPBRows(rows)})
	if err != nil {
		return nil, fmt.Errorf("encode rows: %w", err)
	}
	return b, nil
}

// Len checks the framing of e and counts its rows.
func (e EncodedRows) Len() (int, error) {
	n := 0
	for b := []byte(e); len(b) > 0; n++ {
		num, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 || num != rowsField || typ != protowire.BytesType {
			return 0, errors.New("encoded rows: not a run of rows")
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
		if valLen < 0 {
			return 0, errors.New("encoded rows: truncated")
		}
		b = b[tagLen+valLen:]
	}
	return n, nil
}

// Decode returns the rows of e.
func (e EncodedRows) Decode() ([]sdk.Row, error) {
	if _, err := e.Len(); err != nil {
		return nil, err
	}
	var req pluginpb.PushRequest
	if err := proto.Unmarshal(e, &req); err != nil {
		return nil, fmt.Errorf("encoded rows: %w", err)
	}
	return wire.FromPBRows(req.GetRows()), nil
}

// withRows returns msg with the encoded rows as its rows field: protobuf
// reads a repeated field's entries wherever they are in a message, so the
// bytes are sent as they are.
func withRows(msg *pluginpb.PushRequest, rows EncodedRows) *pluginpb.PushRequest {
	msg.ProtoReflect().SetUnknown(protoreflect.RawFields(rows))
	return msg
}
