package wire

import (
	"errors"
	"time"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// This file holds every conversion between the contract's Go types and the
// generated protobuf types; nothing outside the sdk module sees the latter.

// ToPBTrigger converts between the contract's type and its message.
func ToPBTrigger(t *sdk.Trigger) *pluginpb.Trigger {
	out := &pluginpb.Trigger{
		Uuid:       t.UUID,
		ApiVersion: t.APIVersion,
		Protocol:   t.Protocol,
		SpecJson:   t.Spec,
	}
	if t.Plate != nil {
		out.Plate = &pluginpb.Plate{Rows: int32(t.Plate.Rows), Columns: int32(t.Plate.Columns)}
	}
	if t.Metadata != nil {
		out.HasMetadata = true
		out.MetadataSource = t.Metadata.Source
		out.MetadataSpecJson = t.Metadata.Spec
	}
	return out
}

// FromPBTrigger converts between the contract's type and its message.
func FromPBTrigger(p *pluginpb.Trigger) sdk.Trigger {
	if p == nil {
		return sdk.Trigger{}
	}
	t := sdk.Trigger{
		UUID:       p.GetUuid(),
		APIVersion: p.GetApiVersion(),
		Protocol:   p.GetProtocol(),
		Spec:       p.GetSpecJson(),
	}
	if pl := p.GetPlate(); pl != nil {
		t.Plate = &sdk.Plate{Rows: int(pl.GetRows()), Columns: int(pl.GetColumns())}
	}
	if p.GetHasMetadata() {
		t.Metadata = &sdk.Metadata{Source: p.GetMetadataSource(), Spec: p.GetMetadataSpecJson()}
	}
	return t
}

// ToPBStoredTrigger converts between the contract's type and its message.
func ToPBStoredTrigger(t *sdk.StoredTrigger) *pluginpb.StoredTrigger {
	if t == nil {
		return nil
	}
	out := &pluginpb.StoredTrigger{
		Trigger:            ToPBTrigger(&t.Trigger),
		CreatedAtUnixMicro: t.CreatedAt.UnixMicro(),
		Source:             t.Source,
		Status:             t.Status,
	}
	if t.PublishedAt != nil {
		out.PublishedAtUnixMicro = t.PublishedAt.UnixMicro()
	}
	return out
}

// FromPBStoredTrigger converts between the contract's type and its message.
func FromPBStoredTrigger(p *pluginpb.StoredTrigger) *sdk.StoredTrigger {
	if p == nil {
		return nil
	}
	t := &sdk.StoredTrigger{
		Trigger:   FromPBTrigger(p.GetTrigger()),
		CreatedAt: time.UnixMicro(p.GetCreatedAtUnixMicro()).UTC(),
		Source:    p.GetSource(),
		Status:    p.GetStatus(),
	}
	if us := p.GetPublishedAtUnixMicro(); us != 0 {
		at := time.UnixMicro(us).UTC()
		t.PublishedAt = &at
	}
	return t
}

// ToPBRows converts between the contract's type and its message.
func ToPBRows(rows []sdk.Row) []*pluginpb.Row {
	out := make([]*pluginpb.Row, len(rows))
	for i, r := range rows {
		pr := &pluginpb.Row{Data: make([]*pluginpb.Field, len(r.Data))}
		if r.Index != nil {
			pr.HasIndex, pr.Index = true, int64(*r.Index)
		}
		for j, f := range r.Data {
			pr.Data[j] = &pluginpb.Field{Key: f.Key, ValueJson: f.Value}
		}
		out[i] = pr
	}
	return out
}

// FromPBRows converts between the contract's type and its message.
func FromPBRows(rows []*pluginpb.Row) []sdk.Row {
	// Three allocations for the whole batch rather than three per row.
	out := make([]sdk.Row, len(rows))
	indexes := make([]int, len(rows))
	n := 0
	for _, pr := range rows {
		n += len(pr.GetData())
	}
	fields := make(sdk.Data, 0, n)
	for i, pr := range rows {
		if pr.GetHasIndex() {
			indexes[i] = int(pr.GetIndex())
			out[i].Index = &indexes[i]
		}
		start := len(fields)
		for _, f := range pr.GetData() {
			fields = append(fields, sdk.Field{Key: f.GetKey(), Value: f.GetValueJson()})
		}
		out[i].Data = fields[start:len(fields):len(fields)]
	}
	return out
}

// ToPBPushRequest converts between the contract's type and its message.
func ToPBPushRequest(req *sdk.PushRequest) *pluginpb.PushRequest {
	return &pluginpb.PushRequest{
		Uuid:    req.UUID,
		Rows:    ToPBRows(req.Rows),
		Trigger: ToPBStoredTrigger(req.Trigger),
		Attempt: uint32(max(req.Attempt, 0)),
	}
}

// FromPBPushRequest converts between the contract's type and its message.
func FromPBPushRequest(p *pluginpb.PushRequest) sdk.PushRequest {
	return sdk.PushRequest{
		UUID:    p.GetUuid(),
		Rows:    FromPBRows(p.GetRows()),
		Trigger: FromPBStoredTrigger(p.GetTrigger()),
		Attempt: int(p.GetAttempt()),
	}
}

// ToPBInfo describes a plugin of kind for the wire, with the keys of its
// configuration struct.
func ToPBInfo(info sdk.Info, kind string) *pluginpb.InfoResponse {
	out := &pluginpb.InfoResponse{
		Name:        info.Name,
		Kind:        kind,
		Version:     info.Version,
		SdkVersion:  SDKVersion,
		Description: info.Description,
		Language:    Language,
	}
	for _, k := range ConfigKeys(info.Config) {
		out.Config = append(out.Config, &pluginpb.ConfigKey{
			Name: k.Name, Required: k.Required, Secret: k.Secret, Default: k.Default, Help: k.Help,
		})
	}
	return out
}

// errorCodes maps each sentinel to its wire code, most specific first.
var errorCodes = []struct {
	code pluginpb.ErrorCode
	err  error
}{
	{pluginpb.ErrorCode_ERROR_CODE_INVALID, sdk.ErrInvalid},
	{pluginpb.ErrorCode_ERROR_CODE_SKIPPED, sdk.ErrSkipped},
	{pluginpb.ErrorCode_ERROR_CODE_PERMANENT, sdk.ErrPermanent},
	{pluginpb.ErrorCode_ERROR_CODE_NOT_FOUND, sdk.ErrNotFound},
	{pluginpb.ErrorCode_ERROR_CODE_CONFIG, sdk.ErrConfig},
	{pluginpb.ErrorCode_ERROR_CODE_TOO_LARGE, sdk.ErrTooLarge},
	{pluginpb.ErrorCode_ERROR_CODE_UNAVAILABLE, sdk.ErrUnavailable},
}

// ToPBError encodes err for the wire; nil stays nil.
func ToPBError(err error) *pluginpb.Error {
	if err == nil {
		return nil
	}
	out := &pluginpb.Error{Message: err.Error()}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			out.Code = c.code
			break
		}
	}
	var ve *sdk.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			out.Fields = append(out.Fields, &pluginpb.FieldError{Field: f.Field, Reason: f.Reason})
		}
	}
	return out
}

// FromPBError decodes a wire error into one that matches its sentinel with
// errors.Is and carries the original message; nil stays nil.
func FromPBError(p *pluginpb.Error) error {
	if p == nil {
		return nil
	}
	if p.GetCode() == pluginpb.ErrorCode_ERROR_CODE_INVALID && len(p.GetFields()) > 0 {
		ve := &sdk.ValidationError{}
		for _, f := range p.GetFields() {
			ve.Fields = append(ve.Fields, sdk.FieldError{Field: f.GetField(), Reason: f.GetReason()})
		}
		return ve
	}
	msg := errors.New(p.GetMessage())
	for _, c := range errorCodes {
		if c.code == p.GetCode() {
			return &codedError{code: c.err, err: msg}
		}
	}
	return msg
}

// codedError is an error decoded from the wire: it matches its sentinel
// with errors.Is and keeps the sender's message.
type codedError struct {
	code error
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

func (e *codedError) Unwrap() []error { return []error{e.code, e.err} }
