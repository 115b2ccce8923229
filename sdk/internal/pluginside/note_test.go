package pluginside

import (
	"context"
	"errors"
	"testing"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

type notePusher struct{ outcome error }

func (p notePusher) Info() sdk.Info                              { return sdk.Info{Name: "note"} }
func (p notePusher) Start(context.Context, sdk.Host) error       { return nil }
func (p notePusher) Push(context.Context, sdk.PushRequest) error { return p.outcome }

// A note travels in its own field with the error unset, so a host that
// reads only the error records a delivery.
func TestNoteLeavesTheErrorUnset(t *testing.T) {
	tests := []struct {
		outcome error
		note    string
		code    pluginpb.ErrorCode
		isErr   bool
	}{
		{sdk.Delivered("ignored keys: error"), "ignored keys: error", 0, false},
		{sdk.Delivered(""), "", 0, false},
		{nil, "", 0, false},
		{sdk.Permanent(errors.New("no key column")), "", pluginpb.ErrorCode_ERROR_CODE_PERMANENT, true},
	}
	for _, tt := range tests {
		resp, err := (&pusherServer{impl: notePusher{tt.outcome}}).Push(context.Background(), &pluginpb.PushRequest{Uuid: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetNote() != tt.note || (resp.GetError() != nil) != tt.isErr || resp.GetError().GetCode() != tt.code {
			t.Errorf("%v: response %v", tt.outcome, resp)
		}
	}
}
