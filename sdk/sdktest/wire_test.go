package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
	"github.com/routinglayer/routing/sdk/sdktest"
)

// scriptWatcher runs a test-supplied function as its Run.
type scriptWatcher struct {
	cfg *scriptConfig
	run func(ctx context.Context, host sdk.WatcherHost) error
}

type scriptConfig struct {
	Token string        `env:"TOKEN,required" help:"access token"`
	Every time.Duration `env:"EVERY" envDefault:"5s" help:"poll interval"`
	Label string        `env:"LABEL"`
}

func (w *scriptWatcher) Info() sdk.Info {
	return sdk.Info{Name: "script", Version: "1.2.3", Description: "test watcher", Config: w.cfg}
}

func (w *scriptWatcher) Run(ctx context.Context, host sdk.WatcherHost) error {
	return w.run(ctx, host)
}

func newScript(run func(ctx context.Context, host sdk.WatcherHost) error) *scriptWatcher {
	return &scriptWatcher{cfg: &scriptConfig{}, run: run}
}

var validConfig = sdktest.Options{Config: map[string]string{"TOKEN": "t0k"}}

func sampleTrigger() sdk.Trigger {
	return sdk.Trigger{
		APIVersion: "OT-2/v1alpha1",
		Protocol:   "PlateTransfer",
		Plate:      &sdk.Plate{Rows: 2, Columns: 1},
		Spec:       json.RawMessage(`[{"volume":50},{"volume":100}]`),
		Metadata:   &sdk.Metadata{Source: "test", Spec: json.RawMessage(`{"runId":"r1"}`)},
	}
}

func TestInfoCrossesTheWire(t *testing.T) {
	host := sdktest.NewService()
	run := host.RunWatcher(t, newScript(func(ctx context.Context, _ sdk.WatcherHost) error {
		<-ctx.Done()
		return nil
	}), validConfig)
	info, err := run.Client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := pluginhost.Manifest{
		Name: "script", Kind: pluginhost.KindWatcher, Version: "1.2.3", SDKVersion: "1.1.0", Description: "test watcher", Language: "go",
		Config: []pluginhost.ConfigKey{
			{Name: "TOKEN", Required: true, Secret: true, Help: "access token"},
			{Name: "EVERY", Default: "5s", Help: "poll interval"},
			{Name: "LABEL"},
		},
	}
	if fmt.Sprint(info) != fmt.Sprint(want) {
		t.Fatalf("info\n got %+v\nwant %+v", info, want)
	}
}

func TestWatcherEmitAckRejectDuplicate(t *testing.T) {
	host := sdktest.NewService()
	type outcome struct {
		receipt sdk.Receipt
		err     error
	}
	results := make(chan []outcome, 1)
	w := newScript(func(ctx context.Context, h sdk.WatcherHost) error {
		var out []outcome
		emit := func(tr sdk.Trigger, key string) {
			r, err := h.Emit(ctx, tr, key)
			out = append(out, outcome{r, err})
		}
		emit(sampleTrigger(), "run:1")
		emit(sampleTrigger(), "run:1")
		bad := sampleTrigger()
		bad.APIVersion = "nonsense"
		emit(bad, "")
		emit(sampleTrigger(), "")
		results <- out
		<-ctx.Done()
		return nil
	})
	host.RunWatcher(t, w, validConfig)
	var out []outcome
	select {
	case out = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not finish emitting")
	}
	if w.cfg.Token != "t0k" || w.cfg.Every != 5*time.Second {
		t.Fatalf("config not loaded from PLUGIN_SCRIPT_*: %+v", *w.cfg)
	}
	if out[0].err != nil || out[0].receipt.UUID == "" || out[0].receipt.Duplicate {
		t.Fatalf("first emit: %+v", out[0])
	}
	if out[1].err != nil || out[1].receipt != (sdk.Receipt{UUID: out[0].receipt.UUID, Duplicate: true}) {
		t.Fatalf("same key must be acked as a duplicate of %s: %+v", out[0].receipt.UUID, out[1])
	}
	var ve *sdk.ValidationError
	if !errors.Is(out[2].err, sdk.ErrInvalid) || !errors.As(out[2].err, &ve) || ve.Fields[0].Field != "apiVersion" {
		t.Fatalf("invalid trigger: want a validation error on apiVersion, got %v", out[2].err)
	}
	if out[3].err != nil || out[3].receipt.UUID == out[0].receipt.UUID {
		t.Fatalf("keyless emit must get a new uuid: %+v", out[3])
	}
	got := host.Triggers()
	if len(got) != 2 {
		t.Fatalf("host stored %d triggers, want 2", len(got))
	}
	if got[0].Key != "run:1" || string(got[0].Trigger.Spec) != `[{"volume":50},{"volume":100}]` ||
		got[0].Trigger.Plate.Rows != 2 || got[0].Trigger.Metadata.Source != "test" || string(got[0].Trigger.Metadata.Spec) != `{"runId":"r1"}` {
		t.Fatalf("trigger changed on the wire: %+v", got[0])
	}
}

func TestWatcherHostRejectionCrossesAsUnavailable(t *testing.T) {
	host := sdktest.NewService()
	host.Reject = func(sdk.Trigger, string) error { return errors.New("database is down") }
	errc := make(chan error, 1)
	host.RunWatcher(t, newScript(func(ctx context.Context, h sdk.WatcherHost) error {
		_, err := h.Emit(ctx, sampleTrigger(), "")
		errc <- err
		<-ctx.Done()
		return nil
	}), validConfig)
	err := <-errc
	if !errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrInvalid) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

func TestWatcherConcurrentEmits(t *testing.T) {
	host := sdktest.NewService()
	const n = 50
	host.RunWatcher(t, newScript(func(ctx context.Context, h sdk.WatcherHost) error {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := h.Emit(ctx, sampleTrigger(), fmt.Sprint("k", i)); err != nil {
					h.Logger().Error("emit", "error", err)
				}
			})
		}
		wg.Wait()
		<-ctx.Done()
		return nil
	}), validConfig)
	got := host.WaitTriggers(t, n, 10*time.Second)
	keys := make([]string, len(got))
	for i, e := range got {
		keys[i] = e.Key
	}
	slices.Sort(keys)
	if len(slices.Compact(keys)) != n {
		t.Fatalf("want %d distinct keys, got %v", n, keys)
	}
}

func TestWatcherRunErrorsReachTheHost(t *testing.T) {
	tests := []struct {
		name    string
		opts    sdktest.Options
		run     func(ctx context.Context, h sdk.WatcherHost) error
		wantErr error
		wantMsg string
	}{
		{
			name:    "missing required config",
			opts:    sdktest.Options{},
			run:     func(context.Context, sdk.WatcherHost) error { return nil },
			wantErr: sdk.ErrConfig,
			wantMsg: "PLUGIN_SCRIPT_TOKEN",
		},
		{
			name:    "run fails",
			opts:    validConfig,
			run:     func(context.Context, sdk.WatcherHost) error { return errors.New("upstream said no") },
			wantMsg: "upstream said no",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := sdktest.NewService().RunWatcher(t, newScript(tt.run), tt.opts)
			err := run.Err()
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestStateCrossesTheBroker(t *testing.T) {
	host := sdktest.NewService()
	errc := make(chan error, 1)
	host.RunWatcher(t, newScript(func(ctx context.Context, h sdk.WatcherHost) error {
		errc <- func() error {
			st := h.State()
			if _, err := st.Get(ctx, "missing"); !errors.Is(err, sdk.ErrNotFound) {
				return fmt.Errorf("get missing: want ErrNotFound, got %v", err)
			}
			for _, k := range []string{"runs/b", "runs/a", "plates/x"} {
				if err := st.Put(ctx, k, []byte("v-"+k)); err != nil {
					return err
				}
			}
			if v, err := st.Get(ctx, "runs/a"); err != nil || string(v) != "v-runs/a" {
				return fmt.Errorf("get: %q %v", v, err)
			}
			kvs, err := st.List(ctx, "runs/")
			if err != nil || len(kvs) != 2 || kvs[0].Key != "runs/a" || kvs[1].Key != "runs/b" {
				return fmt.Errorf("list: %+v %v", kvs, err)
			}
			if err := st.Delete(ctx, "runs/b"); err != nil {
				return err
			}
			return st.Delete(ctx, "never-there")
		}()
		<-ctx.Done()
		return nil
	}), validConfig)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := host.State.Keys(); !slices.Equal(got, []string{"plates/x", "runs/a"}) {
		t.Fatalf("host state keys = %v", got)
	}
}

// funcPusher runs a test-supplied function as its Push.
type funcPusher struct {
	push func(ctx context.Context, req sdk.PushRequest) error
}

func (p *funcPusher) Info() sdk.Info                                    { return sdk.Info{Name: "func", Version: "0.0.1"} }
func (p *funcPusher) Start(context.Context, sdk.Host) error             { return nil }
func (p *funcPusher) Push(ctx context.Context, r sdk.PushRequest) error { return p.push(ctx, r) }

func TestPushRequestAndOutcomesCrossTheWire(t *testing.T) {
	var got sdk.PushRequest
	outcome := error(nil)
	client := sdktest.NewService().StartPusher(t, &funcPusher{push: func(_ context.Context, r sdk.PushRequest) error {
		got = r
		return outcome
	}}, sdktest.Options{})

	idx := 3
	created := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
	req := sdk.PushRequest{
		UUID: "abc",
		Rows: []sdk.Row{
			{Index: &idx, Data: sdk.Data{{Key: "zeta", Value: json.RawMessage(`1.50`)}, {Key: "alpha", Value: json.RawMessage(`"x"`)}}},
			{Data: sdk.Data{{Key: "flag", Value: json.RawMessage(`true`)}}},
		},
		Trigger: &sdk.StoredTrigger{Trigger: sampleTrigger(), CreatedAt: created, Source: "watcher:riffyn", Status: "published"},
		Attempt: 2,
	}
	ctx := context.Background()
	if err := client.Push(ctx, req); err != nil {
		t.Fatalf("delivered push returned %v", err)
	}
	gotRows, _ := json.Marshal(got.Rows)
	if string(gotRows) != `[{"index":3,"data":{"zeta":1.50,"alpha":"x"}},{"data":{"flag":true}}]` {
		t.Fatalf("rows changed on the wire:\n got %+v\nwant %+v", got.Rows, req.Rows)
	}
	if got.UUID != "abc" || got.Attempt != 2 || got.Trigger == nil || !got.Trigger.CreatedAt.Equal(created) ||
		got.Trigger.Source != "watcher:riffyn" || got.Trigger.PublishedAt != nil || got.Trigger.Protocol != "PlateTransfer" {
		t.Fatalf("request changed on the wire: %+v", got)
	}

	req.Trigger = nil
	if err := client.Push(ctx, req); err != nil || got.Trigger != nil {
		t.Fatalf("nil trigger must arrive as nil: %v %+v", err, got.Trigger)
	}

	tests := []struct {
		name    string
		outcome error
		is      error
		isNot   []error
	}{
		{"skipped", sdk.Skip("other source"), sdk.ErrSkipped, []error{sdk.ErrPermanent}},
		{"permanent", sdk.Permanent(errors.New("no such column")), sdk.ErrPermanent, []error{sdk.ErrSkipped}},
		{"retryable", errors.New("upstream 503"), nil, []error{sdk.ErrSkipped, sdk.ErrPermanent, pluginhost.ErrPluginExited}},
		{"delivered with a note", sdk.Delivered("ignored keys: error"), sdk.ErrDelivered, []error{sdk.ErrSkipped, sdk.ErrPermanent, pluginhost.ErrPluginExited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcome = tt.outcome
			err := client.Push(ctx, req)
			if err == nil || err.Error() != tt.outcome.Error() {
				t.Fatalf("got %v, want message %q", err, tt.outcome)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("%v does not match %v", err, tt.is)
			}
			for _, not := range tt.isNot {
				if errors.Is(err, not) {
					t.Fatalf("%v must not match %v", err, not)
				}
			}
		})
	}
}

func TestEncodedRowsCrossTheWireAsRows(t *testing.T) {
	var got sdk.PushRequest
	client := sdktest.NewService().StartPusher(t, &funcPusher{push: func(_ context.Context, r sdk.PushRequest) error {
		got = r
		return nil
	}}, sdktest.Options{})
	idx := 7
	first, err := pluginhost.EncodeRows([]sdk.Row{{Index: &idx, Data: sdk.Data{{Key: "odMeasured", Value: json.RawMessage(`0.4200`)}}}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := pluginhost.EncodeRows([]sdk.Row{
		{Data: sdk.Data{{Key: "note", Value: json.RawMessage(`"µ \"q\""`)}, {Key: "none", Value: json.RawMessage(`null`)}}},
		{Data: sdk.Data{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	both := append(append(pluginhost.EncodedRows{}, first...), second...)
	if n, err := both.Len(); err != nil || n != 3 {
		t.Fatalf("Len of two concatenated encodings: %d, %v; want 3", n, err)
	}
	decoded, err := both.Decode()
	if err != nil {
		t.Fatal(err)
	}
	const want = `[{"index":7,"data":{"odMeasured":0.4200}},{"data":{"note":"µ \"q\"","none":null}},{"data":{}}]`
	if b, _ := json.Marshal(decoded); string(b) != want {
		t.Fatalf("Decode: %s, want %s", b, want)
	}

	trigger := &sdk.StoredTrigger{Trigger: sampleTrigger(), Source: "http", Status: "published"}
	if err := client.Client.Push(context.Background(), sdk.PushRequest{UUID: "run9", Trigger: trigger, Attempt: 3}, both); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got.Rows); string(b) != want || got.UUID != "run9" || got.Attempt != 3 || got.Trigger == nil || got.Trigger.Protocol != "PlateTransfer" {
		t.Fatalf("the plugin got %s, %+v; want rows %s for run9, attempt 3, with the trigger", b, got, want)
	}
	// Rows in the request beside encoded ones are not sent twice.
	if err := client.Client.Push(context.Background(), sdk.PushRequest{UUID: "x", Rows: decoded}, first); err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != 1 {
		t.Fatalf("the plugin got %d rows, want the 1 encoded", len(got.Rows))
	}
	for _, bad := range []pluginhost.EncodedRows{{0x0a, 0x01, 'x'}, {0x12, 0x05, 0x01}} {
		if _, err := bad.Len(); err == nil {
			t.Errorf("Len accepted %x", []byte(bad))
		}
	}
}
