package sdk

import (
	"errors"
	"time"

	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// This file holds every conversion between Go types and the generated
// protobuf types; nothing outside the sdk sees the latter.

func toPBTrigger(t *Trigger) *pluginpb.Trigger {
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

func fromPBTrigger(p *pluginpb.Trigger) Trigger {
	if p == nil {
		return Trigger{}
	}
	t := Trigger{
		UUID:       p.GetUuid(),
		APIVersion: p.GetApiVersion(),
		Protocol:   p.GetProtocol(),
		Spec:       p.GetSpecJson(),
	}
	if pl := p.GetPlate(); pl != nil {
		t.Plate = &Plate{Rows: int(pl.GetRows()), Columns: int(pl.GetColumns())}
	}
	if p.GetHasMetadata() {
		t.Metadata = &Metadata{Source: p.GetMetadataSource(), Spec: p.GetMetadataSpecJson()}
	}
	return t
}

func toPBStoredTrigger(t *StoredTrigger) *pluginpb.StoredTrigger {
	if t == nil {
		return nil
	}
	out := &pluginpb.StoredTrigger{
		Trigger:            toPBTrigger(&t.Trigger),
		CreatedAtUnixMicro: t.CreatedAt.UnixMicro(),
		Source:             t.Source,
		Status:             t.Status,
	}
	if t.PublishedAt != nil {
		out.PublishedAtUnixMicro = t.PublishedAt.UnixMicro()
	}
	return out
}

func fromPBStoredTrigger(p *pluginpb.StoredTrigger) *StoredTrigger {
	if p == nil {
		return nil
	}
	t := &StoredTrigger{
		Trigger:   fromPBTrigger(p.GetTrigger()),
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

func toPBRows(rows []Row) []*pluginpb.Row {
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

func fromPBRows(rows []*pluginpb.Row) []Row {
	// Three allocations for the whole batch rather than three per row.
	out := make([]Row, len(rows))
	indexes := make([]int, len(rows))
	n := 0
	for _, pr := range rows {
		n += len(pr.GetData())
	}
	fields := make(Data, 0, n)
	for i, pr := range rows {
		if pr.GetHasIndex() {
			indexes[i] = int(pr.GetIndex())
			out[i].Index = &indexes[i]
		}
		start := len(fields)
		for _, f := range pr.GetData() {
			fields = append(fields, Field{Key: f.GetKey(), Value: f.GetValueJson()})
		}
		out[i].Data = fields[start:len(fields):len(fields)]
	}
	return out
}

func toPBPushRequest(req *PushRequest) *pluginpb.PushRequest {
	return &pluginpb.PushRequest{
		Uuid:    req.UUID,
		Rows:    toPBRows(req.Rows),
		Trigger: toPBStoredTrigger(req.Trigger),
		Attempt: uint32(max(req.Attempt, 0)),
	}
}

func fromPBPushRequest(p *pluginpb.PushRequest) PushRequest {
	return PushRequest{
		UUID:    p.GetUuid(),
		Rows:    fromPBRows(p.GetRows()),
		Trigger: fromPBStoredTrigger(p.GetTrigger()),
		Attempt: int(p.GetAttempt()),
	}
}

func toPBInfo(info Info, kind Kind) *pluginpb.InfoResponse {
	out := &pluginpb.InfoResponse{
		Name:        info.Name,
		Kind:        string(kind),
		Version:     info.Version,
		SdkVersion:  Version,
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

func fromPBInfo(p *pluginpb.InfoResponse) PluginInfo {
	info := PluginInfo{
		Name:        p.GetName(),
		Kind:        Kind(p.GetKind()),
		Version:     p.GetVersion(),
		SDKVersion:  p.GetSdkVersion(),
		Description: p.GetDescription(),
		Language:    p.GetLanguage(),
	}
	for _, k := range p.GetConfig() {
		info.Config = append(info.Config, ConfigKey{
			Name: k.GetName(), Required: k.GetRequired(), Secret: k.GetSecret(), Default: k.GetDefault(), Help: k.GetHelp(),
		})
	}
	return info
}

// errorCodes maps each sentinel to its wire code, most specific first.
var errorCodes = []struct {
	code pluginpb.ErrorCode
	err  error
}{
	{pluginpb.ErrorCode_ERROR_CODE_INVALID, ErrInvalid},
	{pluginpb.ErrorCode_ERROR_CODE_SKIPPED, ErrSkipped},
	{pluginpb.ErrorCode_ERROR_CODE_PERMANENT, ErrPermanent},
	{pluginpb.ErrorCode_ERROR_CODE_NOT_FOUND, ErrNotFound},
	{pluginpb.ErrorCode_ERROR_CODE_CONFIG, ErrConfig},
	{pluginpb.ErrorCode_ERROR_CODE_TOO_LARGE, ErrTooLarge},
	{pluginpb.ErrorCode_ERROR_CODE_UNAVAILABLE, ErrUnavailable},
}

// toPBError encodes err for the wire; nil stays nil.
func toPBError(err error) *pluginpb.Error {
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
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			out.Fields = append(out.Fields, &pluginpb.FieldError{Field: f.Field, Reason: f.Reason})
		}
	}
	return out
}

// fromPBError decodes a wire error into one that matches its sentinel with
// errors.Is and carries the original message; nil stays nil.
func fromPBError(p *pluginpb.Error) error {
	if p == nil {
		return nil
	}
	if p.GetCode() == pluginpb.ErrorCode_ERROR_CODE_INVALID && len(p.GetFields()) > 0 {
		ve := &ValidationError{}
		for _, f := range p.GetFields() {
			ve.Fields = append(ve.Fields, FieldError{Field: f.GetField(), Reason: f.GetReason()})
		}
		return ve
	}
	msg := errors.New(p.GetMessage())
	for _, c := range errorCodes {
		if c.code == p.GetCode() {
			return &kindError{kind: c.err, err: msg}
		}
	}
	return msg
}
