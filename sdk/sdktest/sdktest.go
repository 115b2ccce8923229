// Package sdktest tests a watcher or pusher plugin inside the test
// process. A Service fakes the routing service a plugin runs under (the
// control-tower for a watcher, the data-gateway for a pusher): it serves
// the plugin over real gRPC through go-plugin, with the same adapters,
// messages and error codes as a plugin launched from its file, without
// building a binary. It records emitted triggers, de-duplicates them by
// key the way the control-tower does, serves the plugin's State, and
// drives Start and Push. Keep one Service across several runs to test
// that a plugin resumes after a restart.
//
// The plugin's logs, and go-plugin's warnings, go to the test log
// (t.Log: shown for a failed test, or with go test -v).
//
// CheckWatcher and CheckPusher run the checks every plugin should pass:
// Info is sane, configuration errors are ErrConfig and name the
// variable, secrets are marked secret and never logged, a cancelled
// context is honoured.
package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginside"
	"github.com/routinglayer/routing/sdk/internal/wire"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Emitted is a trigger the Service accepted.
type Emitted struct {
	// UUID is the stored trigger's uuid (the plugin's, or generated).
	UUID string
	// Key is the idempotency key it was emitted with, "" for none.
	Key     string
	Trigger sdk.Trigger
	// TraceParent is the W3C traceparent the Emit call's context carried
	// to the service, "" for none.
	TraceParent string
}

// Service is a fake routing service. Its zero value is not usable; call
// NewService.
type Service struct {
	// State is the plugins' State; it outlives each run.
	State *State
	// Reject, when set, is consulted before each emission is stored; a
	// non-nil error rejects it (sdk.ErrUnavailable simulates an outage, a
	// *sdk.ValidationError a refusal).
	Reject func(t sdk.Trigger, key string) error

	mu       sync.Mutex
	changed  chan struct{}
	triggers []Emitted
	byKey    map[string]string
	returned map[string]bool // uuids whose Emit returned in the plugin
	rejected []error
}

// NewService returns a fake service with an empty State.
func NewService() *Service {
	return &Service{
		State:    NewState(),
		changed:  make(chan struct{}),
		byKey:    make(map[string]string),
		returned: make(map[string]bool),
	}
}

// Accept validates and records an emission as the control-tower does; it
// implements pluginhost.TriggerSink.
func (s *Service) Accept(ctx context.Context, e pluginhost.Emission) (sdk.Receipt, error) {
	err := e.Trigger.Validate()
	if err == nil && s.Reject != nil {
		err = s.Reject(e.Trigger, e.Key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if err != nil {
		s.rejected = append(s.rejected, err)
		return sdk.Receipt{}, err
	}
	if uuid, ok := s.byKey[e.Key]; ok && e.Key != "" {
		return sdk.Receipt{UUID: uuid, Duplicate: true}, nil
	}
	t := e.Trigger
	if t.UUID == "" {
		t.UUID = newUUID()
	}
	if e.Key != "" {
		s.byKey[e.Key] = t.UUID
	}
	parent, _ := sdk.TraceContext(ctx)
	s.triggers = append(s.triggers, Emitted{UUID: t.UUID, Key: e.Key, Trigger: t, TraceParent: parent})
	return sdk.Receipt{UUID: t.UUID}, nil
}

func (s *Service) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// emitReturned records that the plugin's Emit of uuid returned.
func (s *Service) emitReturned(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.returned[uuid] = true
	s.notifyLocked()
}

// Triggers returns the triggers accepted so far, in order, including
// those whose Emit has not returned in the plugin yet.
func (s *Service) Triggers() []Emitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.triggers)
}

// Rejected returns the errors of the emissions rejected so far.
func (s *Service) Rejected() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rejected)
}

// WaitTriggers waits until at least n accepted triggers have had their
// Emit return in the plugin (so what the plugin does after Emit, such as
// recording the trigger in State, has begun) and returns them in the
// order they were accepted; it fails the test after timeout.
func (s *Service) WaitTriggers(tb testing.TB, n int, timeout time.Duration) []Emitted {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		var done []Emitted
		for _, e := range s.triggers {
			if s.returned[e.UUID] {
				done = append(done, e)
			}
		}
		accepted, changed := len(s.triggers), s.changed
		s.mu.Unlock()
		if len(done) >= n {
			return done
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("waited %s for %d triggers: %d accepted, %d returned from Emit (rejected: %v)", timeout, n, accepted, len(done), s.Rejected())
			return nil
		}
	}
}

// Options configure one run of a plugin.
type Options struct {
	// Instance is the instance name; default: the plugin's Info().Name.
	Instance string
	// Config holds configuration keys without their prefix, e.g.
	// {"DIR": "/tmp/in"} for PLUGIN_<NAME>_DIR.
	Config map[string]string
	// Logger receives the plugin's logs; default: the test log, from
	// debug level.
	Logger *slog.Logger
}

func (o Options) instance(info sdk.Info) string {
	if o.Instance != "" {
		return o.Instance
	}
	return info.Name
}

func (o Options) runtime(tb testing.TB, info sdk.Info) pluginside.Runtime {
	instance := o.instance(info)
	environ := make(map[string]string, len(o.Config))
	for k, v := range o.Config {
		environ[wire.EnvPrefix(instance)+k] = v
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(testLog(tb), &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", instance)
	}
	return pluginside.Runtime{Instance: instance, Environ: environ, Logger: logger}
}

// serve serves p as go-plugin does in a plugin process, in test mode (in
// this process, over a local socket), and dispenses the host's client of
// kind. The host's end logs go-plugin's warnings to the test log; the
// plugin's end logs nothing of go-plugin's (its one complaint is the
// listener closing at the end of a test).
func serve(tb testing.TB, kind string, p plugin.Plugin) any {
	tb.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Warn, Output: testLog(tb)})
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{wire.ProtocolVersion: {kind: p}},
		GRPCServer:       pluginside.NewGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test:             &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		cancel()
		tb.Fatalf("serve %s: go-plugin did not start within 10s", kind)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake(),
		Plugins:          pluginhost.Plugins()[wire.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  pluginhost.GRPCDialOptions(),
		Logger:           logger,
	})
	tb.Cleanup(func() {
		client.Kill()
		cancel()
		<-closed
	})
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("connect to %s: %v", kind, err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		tb.Fatalf("dispense %s: %v", kind, err)
	}
	return raw
}

// WatcherRun is one running watcher.
type WatcherRun struct {
	// Client is the service's handle on the watcher.
	Client pluginhost.WatcherClient
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// RunWatcher starts w over gRPC against s and returns at once; the run is
// stopped when the test ends if Stop was not called.
func (s *Service) RunWatcher(tb testing.TB, w sdk.Watcher, opts Options) *WatcherRun {
	tb.Helper()
	watched := &emitWatcher{Watcher: w, s: s}
	raw := serve(tb, wire.KindWatcher, pluginside.WatcherPlugin(watched, opts.runtime(tb, w.Info())))
	ctx, cancel := context.WithCancel(context.Background())
	r := &WatcherRun{Client: raw.(pluginhost.WatcherClient), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.Client.Run(ctx, s, s.State)
	}()
	tb.Cleanup(func() { _ = r.Stop() })
	return r
}

// Stop cancels the run, waits for it to end and returns its error (nil
// for a watcher that stopped cleanly).
func (r *WatcherRun) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// Done is closed when the run ends by itself or through Stop.
func (r *WatcherRun) Done() <-chan struct{} { return r.done }

// Err returns the run's error once Done is closed.
func (r *WatcherRun) Err() error {
	<-r.done
	return r.err
}

// emitWatcher tells the Service when the plugin's Emit returned.
type emitWatcher struct {
	sdk.Watcher
	s *Service
}

func (w *emitWatcher) Run(ctx context.Context, host sdk.WatcherHost) error {
	return w.Watcher.Run(ctx, &emitHost{WatcherHost: host, s: w.s})
}

type emitHost struct {
	sdk.WatcherHost
	s *Service
}

func (h *emitHost) Emit(ctx context.Context, t sdk.Trigger, key string) (sdk.Receipt, error) {
	r, err := h.WatcherHost.Emit(ctx, t, key)
	if err == nil {
		h.s.emitReturned(r.UUID)
	}
	return r, err
}

// PusherConn is a pusher served over gRPC, as the data-gateway holds it.
type PusherConn struct {
	// Client is the service's handle on the pusher.
	Client pluginhost.PusherClient
	state  sdk.State
}

// Start configures the pusher and gives it the Service's State, as the
// data-gateway does once per process.
func (c *PusherConn) Start(ctx context.Context) error { return c.Client.Start(ctx, c.state) }

// Push pushes req's rows as the data-gateway does: encoded once, the
// plugin decoding them into its PushRequest. Errors match the contract's
// sentinels (sdk.ErrSkipped, sdk.ErrPermanent, ...); a delivery with a
// note matches sdk.ErrDelivered and its message is the note.
func (c *PusherConn) Push(ctx context.Context, req sdk.PushRequest) error {
	rows, err := pluginhost.EncodeRows(req.Rows)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	return c.Client.Push(ctx, req, rows)
}

// Manifest asks the pusher to describe itself, as the service does before
// starting it.
func (c *PusherConn) Manifest(ctx context.Context) (pluginhost.Manifest, error) {
	return c.Client.Info(ctx)
}

// ConnectPusher serves p over gRPC without starting it: call Start
// yourself, e.g. to test a configuration error.
func (s *Service) ConnectPusher(tb testing.TB, p sdk.Pusher, opts Options) *PusherConn {
	tb.Helper()
	raw := serve(tb, wire.KindPusher, pluginside.PusherPlugin(p, opts.runtime(tb, p.Info())))
	return &PusherConn{Client: raw.(pluginhost.PusherClient), state: s.State}
}

// StartPusher serves p over gRPC and starts it with the Service's State;
// drive it with Push as the data-gateway would.
func (s *Service) StartPusher(tb testing.TB, p sdk.Pusher, opts Options) *PusherConn {
	tb.Helper()
	c := s.ConnectPusher(tb, p, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		tb.Fatalf("start pusher: %v", err)
	}
	return c
}

// State is an in-memory sdk.State.
type State struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewState returns an empty State.
func NewState() *State { return &State{m: make(map[string][]byte)} }

// Get implements sdk.State.
func (s *State) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("state key %q: %w", key, sdk.ErrNotFound)
	}
	return slices.Clone(v), nil
}

// Put implements sdk.State.
func (s *State) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = slices.Clone(value)
	return nil
}

// Delete implements sdk.State.
func (s *State) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements sdk.State.
func (s *State) List(_ context.Context, prefix string) ([]sdk.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sdk.KeyValue
	for _, k := range slices.Sorted(maps.Keys(s.m)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, sdk.KeyValue{Key: k, Value: slices.Clone(s.m[k])})
		}
	}
	return out, nil
}

// Keys returns the stored keys, sorted.
func (s *State) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.m))
}

func newUUID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
