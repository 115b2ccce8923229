package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/routinglayer/routing/sdk"
)

// A pusher that prints rows, and skips triggers of other sources. Its
// main is one line: func main() { serve.Pusher(&printPusher{}) }.
type printPusher struct {
	cfg struct {
		Prefix string `env:"PREFIX" envDefault:">" help:"printed before each row"`
	}
}

var _ sdk.Pusher = (*printPusher)(nil)

func (p *printPusher) Info() sdk.Info {
	return sdk.Info{Name: "print", Version: "1.0.0", Description: "prints rows", Config: &p.cfg}
}

func (p *printPusher) Start(context.Context, sdk.Host) error { return nil }

func (p *printPusher) Push(_ context.Context, req sdk.PushRequest) error {
	if req.Trigger != nil && req.Trigger.Metadata != nil && req.Trigger.Metadata.Source != "riffyn" {
		return sdk.Skip("only riffyn triggers")
	}
	for _, row := range req.Rows {
		data, err := row.Data.MarshalJSON()
		if err != nil {
			return sdk.Permanent(err)
		}
		fmt.Println(p.cfg.Prefix, req.UUID, string(data))
	}
	return nil
}

func Example_pusher() {
	p := &printPusher{}
	p.cfg.Prefix = ">" // serve.Pusher loads it from PLUGIN_<NAME>_PREFIX
	var row sdk.Row
	if err := json.Unmarshal([]byte(`{"index":0,"data":{"odMeasured":0.42,"mediaTemp":37.10}}`), &row); err != nil {
		panic(err)
	}
	err := p.Push(context.Background(), sdk.PushRequest{UUID: "3f2a9c0d1b7e4a55", Rows: []sdk.Row{row}, Attempt: 1})
	fmt.Println(err)
	other := &sdk.StoredTrigger{Trigger: sdk.Trigger{Metadata: &sdk.Metadata{Source: "filedrop"}}}
	err = p.Push(context.Background(), sdk.PushRequest{UUID: "5b0c", Rows: []sdk.Row{row}, Trigger: other, Attempt: 1})
	fmt.Println(errors.Is(err, sdk.ErrSkipped), err)
	// Output:
	// > 3f2a9c0d1b7e4a55 {"odMeasured":0.42,"mediaTemp":37.10}
	// <nil>
	// true only riffyn triggers
}

// A watcher that emits one trigger per run of an upstream system, with the
// run's id as idempotency key, and remembers in State the last run it
// emitted. Its main is one line: func main() { serve.Watcher(&runWatcher{}) }.
type runWatcher struct {
	cfg struct {
		Every time.Duration `env:"EVERY" envDefault:"30s" help:"how often the upstream system is asked for new runs"`
	}
	runs []string // what the upstream system would return
}

var _ sdk.Watcher = (*runWatcher)(nil)

func (w *runWatcher) Info() sdk.Info {
	return sdk.Info{Name: "runs", Version: "1.0.0", Description: "emits a trigger per upstream run", Config: &w.cfg}
}

func (w *runWatcher) Run(ctx context.Context, host sdk.WatcherHost) error {
	for _, run := range w.runs {
		t := sdk.Trigger{
			APIVersion: "OT-2/v1alpha1",
			Protocol:   "SerialDilution",
			Spec:       json.RawMessage(`{"volume":150}`),
			Metadata:   &sdk.Metadata{Source: "runs", Spec: json.RawMessage(`{"runId":"` + run + `"}`)},
		}
		receipt, err := host.Emit(ctx, t, "runs:"+run)
		if err != nil {
			return err // a crash: the service restarts the plugin, which emits again under the same key
		}
		// Bookkeeping only after Emit returned: nothing is lost or doubled.
		if err := host.State().Put(ctx, "last-run", []byte(run)); err != nil {
			return err
		}
		host.Logger().Info("trigger emitted", "run", run, "uuid", receipt.UUID, "duplicate", receipt.Duplicate, "next check in", w.cfg.Every)
	}
	<-ctx.Done()
	return nil
}

func Example_watcher() {
	w := &runWatcher{runs: []string{"r1", "r2", "r1"}}
	w.cfg.Every = 30 * time.Second // serve.Watcher loads it from PLUGIN_<NAME>_EVERY
	host := newPrintHost()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fmt.Println(w.Run(ctx, host))
	last, _ := host.State().Get(ctx, "last-run")
	fmt.Println("last run:", string(last))
	// Output:
	// level=INFO msg="trigger emitted" run=r1 uuid=uuid-1 duplicate=false "next check in"=30s
	// level=INFO msg="trigger emitted" run=r2 uuid=uuid-2 duplicate=false "next check in"=30s
	// level=INFO msg="trigger emitted" run=r1 uuid=uuid-1 duplicate=true "next check in"=30s
	// <nil>
	// last run: r1
}

// printHost is a minimal sdk.WatcherHost for the example: it stores one
// trigger per key, as the control-tower does. Tests use sdktest.Service,
// which serves the plugin over gRPC as the control-tower would.
type printHost struct {
	keys  map[string]string
	state mapState
	log   *slog.Logger
}

func newPrintHost() *printHost {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	return &printHost{
		keys:  map[string]string{},
		state: mapState{},
		log:   slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})),
	}
}

func (h *printHost) Logger() *slog.Logger { return h.log }
func (h *printHost) State() sdk.State     { return h.state }
func (h *printHost) InstanceName() string { return "runs" }

func (h *printHost) Emit(_ context.Context, t sdk.Trigger, key string) (sdk.Receipt, error) {
	if err := t.Validate(); err != nil {
		return sdk.Receipt{}, err
	}
	if uuid, ok := h.keys[key]; ok {
		return sdk.Receipt{UUID: uuid, Duplicate: true}, nil
	}
	uuid := fmt.Sprintf("uuid-%d", len(h.keys)+1)
	h.keys[key] = uuid
	return sdk.Receipt{UUID: uuid}, nil
}

type mapState map[string][]byte

func (s mapState) Get(_ context.Context, key string) ([]byte, error) {
	if v, ok := s[key]; ok {
		return v, nil
	}
	return nil, sdk.ErrNotFound
}
func (s mapState) Put(_ context.Context, key string, value []byte) error { s[key] = value; return nil }
func (s mapState) Delete(_ context.Context, key string) error            { delete(s, key); return nil }
func (s mapState) List(context.Context, string) ([]sdk.KeyValue, error)  { return nil, nil }

func ExampleDecodeTrigger() {
	_, err := sdk.DecodeTrigger([]byte(`{"apiVersion":"OT-2","protocol":"PlateTransfer","plate":{"rows":4,"columns":1},"spec":[{"volume":50}]}`))
	fmt.Println(err)
	// Output:
	// apiVersion: "OT-2" must look like <api>/v<N>[suffix][/<device>], e.g. OT-2/v1alpha1 or ChiBio/v1alpha1/ChiBio1; spec: has 1 wells but plate 4x1 has 4
}
