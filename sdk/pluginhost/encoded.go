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
//
// The bytes are proto.Marshal's of a PushRequest holding the rows,
// written directly (one allocation) rather than through messages.
func EncodeRows(rows []sdk.Row) (EncodedRows, error) {
	size := 0
	for i := range rows {
		n := rowSize(&rows[i])
		size += protowire.SizeTag(rowsField) + protowire.SizeBytes(n)
	}
	b := make([]byte, 0, size)
	for i := range rows {
		r := &rows[i]
		b = protowire.AppendTag(b, rowsField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(rowSize(r)))
		if r.Index != nil {
			b = protowire.AppendTag(b, rowHasIndex, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
			if *r.Index != 0 {
				b = protowire.AppendTag(b, rowIndex, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(int64(*r.Index)))
			}
		}
		for _, f := range r.Data {
			b = protowire.AppendTag(b, rowData, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(fieldSize(f)))
			if f.Key != "" {
				b = protowire.AppendTag(b, fieldKey, protowire.BytesType)
				b = protowire.AppendString(b, f.Key)
			}
			if len(f.Value) > 0 {
				b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
				b = protowire.AppendBytes(b, f.Value)
			}
		}
	}
	if len(b) != size {
		return nil, fmt.Errorf("encode rows: %d bytes written, %d expected", len(b), size)
	}
	return b, nil
}

// The field numbers of Row and Field (plugin.proto).
const (
	rowHasIndex protowire.Number = 1
	rowIndex    protowire.Number = 2
	rowData     protowire.Number = 3
	fieldKey    protowire.Number = 1
	fieldValue  protowire.Number = 2
)

// rowSize is the size of r's Row message; fields at their default value
// are left out, as proto3 has it.
func rowSize(r *sdk.Row) int {
	n := 0
	if r.Index != nil {
		n += protowire.SizeTag(rowHasIndex) + 1
		if *r.Index != 0 {
			n += protowire.SizeTag(rowIndex) + protowire.SizeVarint(uint64(int64(*r.Index)))
		}
	}
	for _, f := range r.Data {
		n += protowire.SizeTag(rowData) + protowire.SizeBytes(fieldSize(f))
	}
	return n
}

func fieldSize(f sdk.Field) int {
	n := 0
	if f.Key != "" {
		n += protowire.SizeTag(fieldKey) + protowire.SizeBytes(len(f.Key))
	}
	if len(f.Value) > 0 {
		n += protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(f.Value))
	}
	return n
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
