// Package sdktest runs a watcher or pusher plugin over real gRPC, inside
// the test process, against a fake host: the same adapters, messages and
// error codes as a plugin launched by a service, without building a
// binary. A Host records emitted triggers, de-duplicates them by key the
// way the control-tower does, and serves the plugin's State; keep one Host
// across several runs to test that a plugin resumes after a restart.
package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/routinglayer/routing/sdk"
)

// Emitted is a trigger a Host accepted.
type Emitted struct {
	UUID    string
	Key     string
	Trigger sdk.Trigger
}

// Host is a fake service host. Its zero value is not usable; call NewHost.
type Host struct {
	// State is the plugins' State; it outlives each run.
	State *State
	// Reject, when set, is consulted before each emission is stored; a
	// non-nil error rejects it (use sdk.ErrUnavailable to simulate an
	// outage).
	Reject func(sdk.Emission) error

	mu       sync.Mutex
	changed  chan struct{}
	triggers []Emitted
	byKey    map[string]string
	rejected []error
}

// NewHost returns an empty fake host.
func NewHost() *Host {
	return &Host{State: NewState(), changed: make(chan struct{}), byKey: make(map[string]string)}
}

// Accept validates and records an emission; it implements sdk.TriggerSink.
func (h *Host) Accept(_ context.Context, e sdk.Emission) (sdk.Receipt, error) {
	err := e.Trigger.Validate()
	if err == nil && h.Reject != nil {
		err = h.Reject(e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.notifyLocked()
	if err != nil {
		h.rejected = append(h.rejected, err)
		return sdk.Receipt{}, err
	}
	if uuid, ok := h.byKey[e.Key]; ok && e.Key != "" {
		return sdk.Receipt{UUID: uuid, Duplicate: true}, nil
	}
	t := e.Trigger
	if t.UUID == "" {
		t.UUID = newUUID()
	}
	if e.Key != "" {
		h.byKey[e.Key] = t.UUID
	}
	h.triggers = append(h.triggers, Emitted{UUID: t.UUID, Key: e.Key, Trigger: t})
	return sdk.Receipt{UUID: t.UUID}, nil
}

func (h *Host) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Triggers returns the triggers accepted so far, in order.
func (h *Host) Triggers() []Emitted {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.triggers)
}

// Rejected returns the errors of the emissions rejected so far.
func (h *Host) Rejected() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.rejected)
}

// WaitTriggers waits until at least n triggers were accepted and returns
// them; it fails the test after timeout.
func (h *Host) WaitTriggers(tb testing.TB, n int, timeout time.Duration) []Emitted {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		got, changed := len(h.triggers), h.changed
		h.mu.Unlock()
		if got >= n {
			return h.Triggers()
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("waited %s for %d triggers, got %d (rejected: %v)", timeout, n, got, h.Rejected())
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
	// Logger receives the plugin's logs; default: a logger writing to the
	// test log.
	Logger hclog.Logger
}

func (o Options) runtime(tb testing.TB, info sdk.Info) sdk.Runtime {
	instance := o.Instance
	if instance == "" {
		instance = info.Name
	}
	environ := make(map[string]string, len(o.Config))
	for k, v := range o.Config {
		environ[sdk.EnvPrefix(instance)+k] = v
	}
	logger := o.Logger
	if logger == nil {
		out := io.Discard
		if testing.Verbose() {
			out = os.Stderr
		}
		logger = hclog.New(&hclog.LoggerOptions{Name: instance, Level: hclog.Debug, Output: out})
	}
	return sdk.Runtime{Instance: instance, Environ: environ, Logger: logger}
}

// connect serves p over go-plugin's in-process gRPC connection and
// dispenses the host-side client of the given kind.
func connect(tb testing.TB, kind sdk.Kind, p plugin.Plugin) any {
	tb.Helper()
	client, _ := plugin.TestPluginGRPCConn(tb, false, map[string]plugin.Plugin{string(kind): p})
	tb.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(string(kind))
	if err != nil {
		tb.Fatalf("dispense %s: %v", kind, err)
	}
	return raw
}

// WatcherRun is one running watcher.
type WatcherRun struct {
	// Client is the host's handle on the watcher, as a service sees it.
	Client sdk.WatcherClient
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// RunWatcher starts w over gRPC against h and returns at once; the run is
// stopped when the test ends if Stop was not called.
func (h *Host) RunWatcher(tb testing.TB, w sdk.Watcher, opts Options) *WatcherRun {
	tb.Helper()
	raw := connect(tb, sdk.KindWatcher, sdk.NewWatcherPlugin(w, opts.runtime(tb, w.Info())))
	ctx, cancel := context.WithCancel(context.Background())
	r := &WatcherRun{Client: raw.(sdk.WatcherClient), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.Client.Run(ctx, h, h.State)
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

// ConnectPusher serves p over gRPC and returns the host-side client
// without starting it: call Start(ctx, h.State) yourself, e.g. to test a
// configuration error.
func (h *Host) ConnectPusher(tb testing.TB, p sdk.Pusher, opts Options) sdk.PusherClient {
	tb.Helper()
	return connect(tb, sdk.KindPusher, sdk.NewPusherPlugin(p, opts.runtime(tb, p.Info()))).(sdk.PusherClient)
}

// StartPusher serves p over gRPC, calls Start with h's State and returns
// the host-side client; drive it with Push as the data-gateway would.
func (h *Host) StartPusher(tb testing.TB, p sdk.Pusher, opts Options) sdk.PusherClient {
	tb.Helper()
	client := h.ConnectPusher(tb, p, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Start(ctx, h.State); err != nil {
		tb.Fatalf("start pusher: %v", err)
	}
	return client
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
		return nil, sdk.ErrNotFound
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
