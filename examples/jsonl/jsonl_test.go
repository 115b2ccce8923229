package jsonl_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routinglayer/routing/examples/jsonl"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/sdktest"
)

func rows(tb testing.TB, bodies ...string) []sdk.Row {
	tb.Helper()
	out := make([]sdk.Row, len(bodies))
	for i, b := range bodies {
		if err := sdk.DecodeStrict([]byte(b), &out[i]); err != nil {
			tb.Fatal(err)
		}
		if err := out[i].Validate(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestRowsAppendedByteExact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	client := sdktest.NewService().StartPusher(t, jsonl.New(), sdktest.Options{Config: map[string]string{"DIR": dir}})
	ctx := context.Background()

	push := func(uuid string, bodies ...string) {
		t.Helper()
		if err := client.Push(ctx, sdk.PushRequest{UUID: uuid, Rows: rows(t, bodies...), Attempt: 1}); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	push("run1", `{"index": 0, "data": {"zeta": 1.50, "alpha": "x", "flag": true, "none": null}}`)
	push("run1",
		`{"index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}}`,
		`{"data":{"note":"with \"quotes\" and unicode µ"}}`)
	push("run2", `{"data":{"k":-1e-3}}`)

	tests := []struct {
		file string
		want string
	}{
		{"run1.jsonl", `{"uuid":"run1","index":0,"data":{"zeta":1.50,"alpha":"x","flag":true,"none":null}}` + "\n" +
			`{"uuid":"run1","index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}}` + "\n" +
			`{"uuid":"run1","data":{"note":"with \"quotes\" and unicode µ"}}` + "\n"},
		{"run2.jsonl", `{"uuid":"run2","data":{"k":-1e-3}}` + "\n"},
	}
	for _, tt := range tests {
		got, err := os.ReadFile(filepath.Join(dir, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.file, got, tt.want)
		}
	}
}

func TestUnsafeUUIDIsPermanent(t *testing.T) {
	client := sdktest.NewService().StartPusher(t, jsonl.New(), sdktest.Options{Config: map[string]string{"DIR": t.TempDir()}})
	for _, uuid := range []string{"../escape", "a/b", ""} {
		err := client.Push(context.Background(), sdk.PushRequest{UUID: uuid, Rows: rows(t, `{"data":{"a":1}}`), Attempt: 1})
		if !errors.Is(err, sdk.ErrPermanent) {
			t.Errorf("uuid %q: want a permanent error, got %v", uuid, err)
		}
	}
}

func TestMissingDirIsAConfigError(t *testing.T) {
	client := sdktest.NewService().ConnectPusher(t, jsonl.New(), sdktest.Options{})
	err := client.Start(context.Background())
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "PLUGIN_JSONL_DIR") {
		t.Fatalf("want ErrConfig naming PLUGIN_JSONL_DIR, got %v", err)
	}
}

// The contract's checks: Info, configuration errors, secrets, outcome and
// cancellation.
func TestConformance(t *testing.T) {
	opts := sdktest.Options{Config: map[string]string{"DIR": t.TempDir()}}
	req := sdk.PushRequest{UUID: "run1", Rows: rows(t, `{"index":0,"data":{"odMeasured":0.42}}`), Attempt: 1}
	sdktest.CheckPusher(t, func() sdk.Pusher { return jsonl.New() }, opts, req)
}
