package sdktest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginside"
	"github.com/routinglayer/routing/sdk/internal/wire"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// cancelBound is how long a plugin has to return once its context is done.
const cancelBound = 5 * time.Second

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	versionRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$`)
)

// CheckWatcher runs the contract's checks on a watcher, as subtests:
//
//   - Info: a name that can name a file (watcher-<name>), a semantic
//     version, a description, Config the same pointer to a struct on every
//     call (or nil), a help text for every configuration key, and the
//     manifest the service receives agreeing with it;
//   - ConfigErrors: without its required keys, Run ends with an error
//     matching sdk.ErrConfig that names the first missing variable
//     (PLUGIN_<NAME>_<KEY>);
//   - Secrets: keys whose names end in KEY, TOKEN, PASSWORD or SECRET are
//     reported secret, and no secret value of opts.Config reaches the log;
//   - Cancellation: a watcher running with opts returns nil within 5s of
//     its context being cancelled.
//
// newWatcher returns a fresh watcher for each check; opts must configure
// one that runs.
func CheckWatcher(t *testing.T, newWatcher func() sdk.Watcher, opts Options) {
	t.Helper()
	t.Run("Info", func(t *testing.T) { checkInfo(t, newWatcher(), pluginhost.KindWatcher) })
	t.Run("ConfigErrors", func(t *testing.T) {
		w := newWatcher()
		missing := firstRequired(w.Info(), opts)
		if missing == "" {
			t.Skip("no required configuration key")
		}
		run := NewService().RunWatcher(t, w, Options{Instance: opts.Instance})
		select {
		case <-run.Done():
		case <-time.After(cancelBound):
			t.Fatalf("Run without %s is still running after %s; want it to end with sdk.ErrConfig", missing, cancelBound)
		}
		checkConfigError(t, run.Err(), missing)
	})
	t.Run("Secrets", func(t *testing.T) {
		w := newWatcher()
		checkSecretKeys(t, w.Info())
		logs, o := captureLogs(opts)
		run := NewService().RunWatcher(t, w, o)
		time.Sleep(200 * time.Millisecond) // let it start and log
		_ = run.Stop()
		checkSecretsNotLogged(t, w.Info(), opts, logs.String())
	})
	t.Run("Cancellation", func(t *testing.T) {
		run := NewService().RunWatcher(t, newWatcher(), opts)
		time.Sleep(200 * time.Millisecond) // let it start
		select {
		case <-run.Done():
			t.Fatalf("the watcher stopped before it was cancelled: %v", run.Err())
		default:
		}
		stopped := make(chan error, 1)
		go func() { stopped <- run.Stop() }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Run returned %v after its context was cancelled; want nil", err)
			}
		case <-time.After(cancelBound):
			t.Fatalf("Run did not return within %s of its context being cancelled", cancelBound)
		}
	})
}

// CheckPusher runs the contract's checks on a pusher, as subtests: Info,
// ConfigErrors (Start fails with sdk.ErrConfig naming the variable) and
// Secrets as CheckWatcher's, and
//
//   - Outcome: with opts, Start succeeds and req is delivered (nil, or
//     sdk.Delivered's note) or skipped (sdk.Skip), the outcomes of a
//     working destination;
//   - Cancellation: Push of req with a context already cancelled returns
//     within 5s; if it returns an error, the error is not permanent (the
//     rows are not at fault) and matches context.Canceled.
//
// newPusher returns a fresh pusher for each check; opts must configure one
// that delivers req.
func CheckPusher(t *testing.T, newPusher func() sdk.Pusher, opts Options, req sdk.PushRequest) {
	t.Helper()
	ctx := context.Background()
	t.Run("Info", func(t *testing.T) { checkInfo(t, newPusher(), pluginhost.KindPusher) })
	t.Run("ConfigErrors", func(t *testing.T) {
		p := newPusher()
		missing := firstRequired(p.Info(), opts)
		if missing == "" {
			t.Skip("no required configuration key")
		}
		c := NewService().ConnectPusher(t, p, Options{Instance: opts.Instance})
		checkConfigError(t, c.Start(ctx), missing)
	})
	t.Run("Secrets", func(t *testing.T) {
		p := newPusher()
		checkSecretKeys(t, p.Info())
		logs, o := captureLogs(opts)
		c := NewService().StartPusher(t, p, o)
		_ = c.Push(ctx, req)
		checkSecretsNotLogged(t, p.Info(), opts, logs.String())
	})
	t.Run("Outcome", func(t *testing.T) {
		c := NewService().StartPusher(t, newPusher(), opts)
		if err := c.Push(ctx, req); err != nil && !errors.Is(err, sdk.ErrDelivered) && !errors.Is(err, sdk.ErrSkipped) {
			t.Fatalf("Push = %v; want nil, sdk.Delivered(note) or sdk.Skip(reason)", err)
		}
	})
	t.Run("Cancellation", func(t *testing.T) {
		c := NewService().StartPusher(t, newPusher(), opts)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		done := make(chan error, 1)
		go func() { done <- c.Push(cancelled, req) }()
		select {
		case err := <-done:
			if err != nil && (errors.Is(err, sdk.ErrPermanent) || !errors.Is(err, context.Canceled)) {
				t.Fatalf("Push with a cancelled context = %v; want nil or an error matching context.Canceled, not a permanent one", err)
			}
		case <-time.After(cancelBound):
			t.Fatalf("Push did not return within %s with a cancelled context", cancelBound)
		}
	})
}

// checkInfo checks what Info returns and what the service receives.
func checkInfo(t *testing.T, p interface{ Info() sdk.Info }, kind pluginhost.Kind) {
	t.Helper()
	info := p.Info()
	if !nameRE.MatchString(info.Name) {
		t.Errorf("Info().Name = %q; want [a-z0-9][a-z0-9-]*, it names the file %s-<name>", info.Name, kind)
	}
	if !versionRE.MatchString(info.Version) {
		t.Errorf("Info().Version = %q; want a semantic version such as 1.2.0", info.Version)
	}
	if strings.TrimSpace(info.Description) == "" {
		t.Error("Info().Description is empty; operators see it in GET /plugins")
	}
	if info.Config != nil {
		v := reflect.ValueOf(info.Config)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			t.Errorf("Info().Config is a %T; want a pointer to the configuration struct", info.Config)
		} else if again := p.Info().Config; reflect.ValueOf(again).Pointer() != v.Pointer() {
			t.Error("Info().Config points to a new struct on each call; the SDK loads the configuration into the pointer it gets, so return the same one (a field of the plugin)")
		}
	}
	for _, k := range wire.ConfigKeys(info.Config) {
		if strings.TrimSpace(k.Help) == "" {
			t.Errorf("configuration key %s has no help:\"...\" tag; operators see it in GET /plugins", k.Name)
		}
	}
	var m pluginhost.Manifest
	ctx := context.Background()
	switch p := p.(type) {
	case sdk.Watcher:
		raw := serve(t, wire.KindWatcher, pluginside.WatcherPlugin(p, Options{}.runtime(t, info)))
		var err error
		if m, err = raw.(pluginhost.WatcherClient).Info(ctx); err != nil {
			t.Fatalf("Info over gRPC: %v", err)
		}
	case sdk.Pusher:
		var err error
		if m, err = NewService().ConnectPusher(t, p, Options{}).Manifest(ctx); err != nil {
			t.Fatalf("Info over gRPC: %v", err)
		}
	}
	if m.Kind != kind || m.Name != info.Name || m.Version != info.Version || m.Language != wire.Language || m.SDKVersion != wire.SDKVersion {
		t.Errorf("the service receives %+v; want kind %s, name %q, version %q, language %s, SDK %s", m, kind, info.Name, info.Version, wire.Language, wire.SDKVersion)
	}
}

// firstRequired names the first required key without a default, as its
// variable, or "".
func firstRequired(info sdk.Info, opts Options) string {
	for _, k := range wire.ConfigKeys(info.Config) {
		if k.Required && k.Default == "" {
			return wire.EnvPrefix(opts.instance(info)) + k.Name
		}
	}
	return ""
}

func checkConfigError(t *testing.T, err error, variable string) {
	t.Helper()
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), variable) {
		t.Fatalf("without %s: %v; want an error matching sdk.ErrConfig that names %s", variable, err, variable)
	}
}

func checkSecretKeys(t *testing.T, info sdk.Info) {
	t.Helper()
	for _, k := range wire.ConfigKeys(info.Config) {
		upper := strings.ToUpper(k.Name)
		for _, suffix := range []string{"KEY", "TOKEN", "PASSWORD", "SECRET"} {
			if strings.HasSuffix(upper, suffix) && !k.Secret {
				t.Errorf("configuration key %s is not reported secret", k.Name)
			}
		}
	}
}

func checkSecretsNotLogged(t *testing.T, info sdk.Info, opts Options, logs string) {
	t.Helper()
	for _, k := range wire.ConfigKeys(info.Config) {
		if v := opts.Config[k.Name]; k.Secret && len(v) >= 4 && strings.Contains(logs, v) {
			t.Errorf("the value of secret key %s appears in the plugin's log", k.Name)
		}
	}
}

// captureLogs returns opts logging to a buffer as well.
func captureLogs(opts Options) (*lockedBuffer, Options) {
	buf := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: pluginside.LevelTrace}))
	return buf, opts
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
