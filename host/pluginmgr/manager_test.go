package pluginmgr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

var (
	must    = testkit.Must
	waitFor = testkit.WaitFor
)

// probeBin is the probe plugin, built once by TestMain.
var probeBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv("PLUGINMGR_TEST_HOST_DIR"); dir != "" {
		if db := os.Getenv("PLUGINMGR_TEST_LEASE_DB"); db != "" {
			runLeaseHost(dir, db)
			return
		}
		runHelperHost(dir)
		return
	}
	tmp, err := os.MkdirTemp("", "pluginmgr-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	probeBin = filepath.Join(tmp, "probe")
	out, err := exec.Command("go", "build", "-o", probeBin, "./testdata/probe").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build probe plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// install copies the probe into dir under each file name.
func install(tb testing.TB, dir string, files ...string) {
	tb.Helper()
	installBinary(tb, probeBin, dir, files...)
}

// installBinary copies bin into dir under each file name, the way
// operators are told to: copy to a hidden name, then rename.
func installBinary(tb testing.TB, bin, dir string, files ...string) {
	tb.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		tmp := filepath.Join(dir, "."+f+".tmp")
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f)); err != nil {
			tb.Fatal(err)
		}
	}
}

// sink records the reports the probe watchers emit.
type sink struct {
	mu      sync.Mutex
	reports map[string][]report // by instance
}

type report struct {
	Environ []string `json:"environ"`
	PID     int      `json:"pid"`
	// Runs counts the probe's runs, kept in its State.
	Runs int `json:"runs"`
}

func (s *sink) accept(name string, e pluginhost.Emission) {
	var r report
	_ = json.Unmarshal(e.Trigger.Spec, &r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[name] = append(s.reports[name], r)
}

func (s *sink) get(name string) []report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports[name])
}

type sinkFunc func(ctx context.Context, e pluginhost.Emission) (sdk.Receipt, error)

func (f sinkFunc) Accept(ctx context.Context, e pluginhost.Emission) (sdk.Receipt, error) {
	return f(ctx, e)
}

type memState struct{}

func (memState) Get(context.Context, string) ([]byte, error)          { return nil, sdk.ErrNotFound }
func (memState) Put(context.Context, string, []byte) error            { return nil }
func (memState) Delete(context.Context, string) error                 { return nil }
func (memState) List(context.Context, string) ([]sdk.KeyValue, error) { return nil, nil }

// harness runs a watcher Manager on a directory until the test ends.
type harness struct {
	m    *pluginmgr.Manager
	dir  string
	sink *sink
	stop func()
}

func startManager(tb testing.TB, dir string, environ []string, tune func(*pluginmgr.Config)) *harness {
	tb.Helper()
	return startManagerWith(tb, dir, environ, tune, func(string) sdk.State { return memState{} })
}

// startManagerWith is startManager with each plugin's State from state.
func startManagerWith(tb testing.TB, dir string, environ []string, tune func(*pluginmgr.Config), state func(name string) sdk.State) *harness {
	tb.Helper()
	s := &sink{reports: make(map[string][]report)}
	cfg := pluginmgr.Config{
		Dir:          dir,
		Kind:         pluginhost.KindWatcher,
		Environ:      environ,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
		HealthyAfter: time.Minute,
		Settle:       100 * time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	attach := func(ctx context.Context, p *pluginmgr.Plugin) error {
		w := p.Client.(pluginhost.WatcherClient)
		return w.Run(ctx, sinkFunc(func(_ context.Context, e pluginhost.Emission) (sdk.Receipt, error) {
			s.accept(p.Name, e)
			return sdk.Receipt{UUID: "u"}, nil
		}), state(p.Name))
	}
	logs := &testkit.LogBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: io.MultiWriter(testOutput(), logs)})
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("manager and plugin logs:\n%s", logs.String())
		}
	})
	m := pluginmgr.New(cfg, attach, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	h := &harness{m: m, dir: dir, sink: s, stop: func() { cancel(); <-done }}
	tb.Cleanup(h.stop)
	return h
}

func testOutput() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

func (h *harness) status(tb testing.TB, name string) pluginmgr.Status {
	tb.Helper()
	st, err := h.m.Get(name)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func (h *harness) waitState(tb testing.TB, name string, state pluginmgr.State, extra func(pluginmgr.Status) bool) pluginmgr.Status {
	tb.Helper()
	var st pluginmgr.Status
	waitFor(tb, 30*time.Second, fmt.Sprintf("%s to be %s", name, state), func() bool {
		st, _ = h.m.Get(name)
		return st.State == state && (extra == nil || extra(st))
	})
	return st
}

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; only its parent has not collected it yet.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "watcher-elsewhere")
	files := []struct {
		name string
		mode os.FileMode
	}{
		{"watcher-good", 0o755},
		{"watcher-also-good", 0o700},
		{"watcher-noexec", 0o644},
		{".watcher-hidden", 0o755},
		{"pusher-other-kind", 0o755},
		{"watcher-worldwritable", 0o757},
		{"watcher-groupwritable", 0o775},
		{"watcher-Bad_Name", 0o755},
		{"README.md", 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte("#!/bin/sh\n"), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, f.name), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink(outside, filepath.Join(dir, "watcher-link-out")))
	must(t, os.Symlink(filepath.Join(dir, "watcher-good"), filepath.Join(dir, "watcher-link-in")))
	must(t, os.Mkdir(filepath.Join(dir, "watcher-dir"), 0o755))

	found, skipped, err := pluginmgr.Discover(dir, pluginhost.KindWatcher)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range found {
		names = append(names, c.Name)
	}
	if want := []string{"also-good", "good", "link-in"}; !slices.Equal(names, want) {
		t.Fatalf("found %v, want %v", names, want)
	}
	reasons := map[string]string{}
	for _, s := range skipped {
		reasons[s.File] = s.Reason
	}
	for file, want := range map[string]string{
		"watcher-noexec":        "not executable",
		".watcher-hidden":       "hidden",
		"watcher-worldwritable": "writable by group or others",
		"watcher-groupwritable": "writable by group or others",
		"watcher-Bad_Name":      "must match",
		"watcher-link-out":      "outside the plugins directory",
		"watcher-dir":           "directory",
	} {
		if !strings.Contains(reasons[file], want) {
			t.Errorf("%s: skip reason %q, want it to contain %q", file, reasons[file], want)
		}
	}
	if _, ok := reasons["pusher-other-kind"]; ok {
		t.Errorf("a file of the other kind must be ignored silently, got %q", reasons["pusher-other-kind"])
	}
	if len(skipped) != 7 {
		t.Errorf("skipped %d files, want 7: %+v", len(skipped), skipped)
	}
}

func TestPluginSeesOnlyItsOwnEnvironment(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-alpha", "watcher-beta", "watcher-alpha-x")
	environ := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/home/lab",
		"TZ=Europe/London",
		"PLUGIN_ALPHA_TOKEN=alpha-secret",
		"PLUGIN_ALPHA_REGION=eu",
		"PLUGIN_BETA_TOKEN=beta-secret",
		"PLUGIN_ALPHA_X_TOKEN=alpha-x-secret",
		"HOST_DATABASE_PASSWORD=hunter2",
		"AMQP_URL=amqp://guest:guest@127.0.0.1/",
	}
	h := startManager(t, dir, environ, nil)
	for _, name := range []string{"alpha", "beta", "alpha-x"} {
		waitFor(t, 30*time.Second, name+" to report", func() bool { return len(h.sink.get(name)) > 0 })
	}
	tests := []struct {
		name    string
		want    []string
		notWant []string
	}{
		{"alpha", []string{"PLUGIN_ALPHA_TOKEN=alpha-secret", "PLUGIN_ALPHA_REGION=eu", "HOME=/home/lab", "TZ=Europe/London", "ROUTING_PLUGIN_INSTANCE=alpha"},
			[]string{"PLUGIN_BETA_TOKEN", "PLUGIN_ALPHA_X_TOKEN", "HOST_DATABASE_PASSWORD", "AMQP_URL"}},
		{"beta", []string{"PLUGIN_BETA_TOKEN=beta-secret", "ROUTING_PLUGIN_INSTANCE=beta"},
			[]string{"PLUGIN_ALPHA_TOKEN", "PLUGIN_ALPHA_X_TOKEN", "HOST_DATABASE_PASSWORD", "AMQP_URL"}},
		{"alpha-x", []string{"PLUGIN_ALPHA_X_TOKEN=alpha-x-secret"},
			[]string{"PLUGIN_ALPHA_TOKEN", "PLUGIN_ALPHA_REGION", "PLUGIN_BETA_TOKEN", "HOST_DATABASE_PASSWORD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := h.sink.get(tt.name)[0].Environ
			for _, w := range tt.want {
				if !slices.Contains(env, w) {
					t.Errorf("missing %s in %v", w, env)
				}
			}
			for _, nw := range tt.notWant {
				if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, nw+"=") }) {
					t.Errorf("%s leaked into %s's environment", nw, tt.name)
				}
			}
		})
	}
}

func TestKilledPluginIsRestarted(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-victim", "watcher-bystander")
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, nil)
	first := h.waitState(t, "victim", pluginmgr.StateRunning, nil)
	bystander := h.waitState(t, "bystander", pluginmgr.StateRunning, nil)

	must(t, syscall.Kill(first.PID, syscall.SIGKILL))
	second := h.waitState(t, "victim", pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.PID != first.PID })
	if second.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", second.Restarts)
	}
	if !strings.Contains(second.PreviousError, "exited") || second.LastError != "" {
		t.Errorf("running again: previous error %q does not say the process exited, or a last error %q is shown", second.PreviousError, second.LastError)
	}
	waitFor(t, 30*time.Second, "a report from the restarted process", func() bool {
		for _, r := range h.sink.get("victim") {
			if r.PID == second.PID {
				return true
			}
		}
		return false
	})
	if st := h.status(t, "bystander"); st.PID != bystander.PID || st.Restarts != 0 {
		t.Errorf("bystander disturbed: pid %d -> %d, restarts %d", bystander.PID, st.PID, st.Restarts)
	}
	if alive(first.PID) {
		t.Errorf("killed pid %d still alive", first.PID)
	}
}

func TestCrashLoopEndsFailedAndRestartRecovers(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-crasher")
	flag := filepath.Join(t.TempDir(), "crash")
	must(t, os.WriteFile(flag, nil, 0o600))
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH"), "PLUGIN_CRASHER_CRASH_IF_EXISTS=" + flag},
		func(c *pluginmgr.Config) { c.MaxFastCrashes = 3 })

	failed := h.waitState(t, "crasher", pluginmgr.StateFailed, nil)
	if failed.Restarts != 2 {
		t.Errorf("restarts before giving up = %d, want 2 (3 launches)", failed.Restarts)
	}
	if failed.LastError == "" || failed.PID != 0 {
		t.Errorf("failed status: lastError %q pid %d", failed.LastError, failed.PID)
	}
	if !slices.ContainsFunc(failed.Stderr, func(l string) bool { return strings.Contains(l, "crashing at start as asked") }) {
		t.Errorf("stderr lines do not show the crash: %q", failed.Stderr)
	}
	// It stays failed: no more launches.
	time.Sleep(300 * time.Millisecond)
	if st := h.status(t, "crasher"); st.State != pluginmgr.StateFailed || st.Restarts != 2 {
		t.Fatalf("a failed plugin was relaunched: %+v", st)
	}

	must(t, os.Remove(flag))
	must(t, h.m.Restart(context.Background(), "crasher"))
	st := h.waitState(t, "crasher", pluginmgr.StateRunning, nil)
	if st.PID == 0 || !alive(st.PID) {
		t.Fatalf("restarted plugin has no live pid: %+v", st)
	}
	waitFor(t, 30*time.Second, "the recovered watcher to report", func() bool { return len(h.sink.get("crasher")) == 1 })
}

func TestStopAndStart(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-steady")
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, nil)
	running := h.waitState(t, "steady", pluginmgr.StateRunning, nil)

	must(t, h.m.Stop(context.Background(), "steady"))
	h.waitState(t, "steady", pluginmgr.StateStopped, nil)
	waitFor(t, 5*time.Second, "the stopped process to be gone", func() bool { return !alive(running.PID) })

	must(t, h.m.Start(context.Background(), "steady"))
	again := h.waitState(t, "steady", pluginmgr.StateRunning, nil)
	if again.PID == running.PID {
		t.Fatal("start did not launch a new process")
	}
	// Start on a running plugin changes nothing.
	must(t, h.m.Start(context.Background(), "steady"))
	if st := h.status(t, "steady"); st.PID != again.PID || st.State != pluginmgr.StateRunning {
		t.Fatalf("start on a running plugin relaunched it: %+v", st)
	}
	if err := h.m.Restart(context.Background(), "nope"); !errors.Is(err, pluginmgr.ErrUnknownPlugin) {
		t.Fatalf("restart of unknown plugin: %v", err)
	}
}

func TestStoppingTheHostLeavesNoPluginProcess(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-one", "watcher-two")
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, nil)
	pids := []int{
		h.waitState(t, "one", pluginmgr.StateRunning, nil).PID,
		h.waitState(t, "two", pluginmgr.StateRunning, nil).PID,
	}
	h.stop()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin pid %d outlived the manager", pid)
		}
	}
}

// runHelperHost is a plugin host in a child process, for the test that
// kills a host with SIGKILL. It writes its plugin's pid to dir/pid.
func runHelperHost(dir string) {
	logger := hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	m := pluginmgr.New(pluginmgr.Config{Dir: dir, Kind: pluginhost.KindWatcher, Environ: []string{"PATH=" + os.Getenv("PATH")}},
		func(ctx context.Context, p *pluginmgr.Plugin) error {
			return p.Client.(pluginhost.WatcherClient).Run(ctx, sinkFunc(func(context.Context, pluginhost.Emission) (sdk.Receipt, error) {
				return sdk.Receipt{UUID: "u"}, nil
			}), memState{})
		}, logger)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			if st, err := m.Get("orphan"); err == nil && st.State == pluginmgr.StateRunning {
				_ = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(st.PID)), 0o600)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_ = m.Run(ctx)
}

func TestKilledHostLeavesNoPluginProcess(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-orphan")
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), "PLUGINMGR_TEST_HOST_DIR="+dir)
	must(t, host.Start())
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })

	var pid int
	waitFor(t, 30*time.Second, "the helper host to start its plugin", func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			return false
		}
		pid, _ = strconv.Atoi(string(data))
		return pid > 0
	})
	if !alive(pid) {
		t.Fatalf("plugin pid %d not alive before the host is killed", pid)
	}
	must(t, host.Process.Signal(syscall.SIGKILL))
	_ = host.Wait()
	waitFor(t, 30*time.Second, fmt.Sprintf("plugin pid %d to exit after its host was killed", pid), func() bool { return !alive(pid) })
}

func TestFrozenPluginFailsItsHealthCheckAndIsRestarted(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-frozen", "watcher-bystander")
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) {
		c.HealthInterval = 200 * time.Millisecond
		c.HealthTimeout = 500 * time.Millisecond
	})
	first := h.waitState(t, "frozen", pluginmgr.StateRunning, nil)
	bystander := h.waitState(t, "bystander", pluginmgr.StateRunning, nil)
	// Healthy plugins are left alone across several checks.
	time.Sleep(time.Second)
	if st := h.status(t, "frozen"); st.PID != first.PID || st.Restarts != 0 {
		t.Fatalf("a healthy plugin was restarted: %+v", st)
	}

	// SIGSTOP: the process exists but answers nothing.
	must(t, syscall.Kill(first.PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(first.PID, syscall.SIGCONT) })
	second := h.waitState(t, "frozen", pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.PID != first.PID })
	if !strings.Contains(second.PreviousError, "health check") {
		t.Errorf("previous error %q does not name the health check", second.PreviousError)
	}
	if second.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", second.Restarts)
	}
	waitFor(t, 10*time.Second, "the frozen process to be killed", func() bool { return !alive(first.PID) })
	if st := h.status(t, "bystander"); st.PID != bystander.PID || st.Restarts != 0 {
		t.Errorf("bystander disturbed: pid %d -> %d, restarts %d", bystander.PID, st.PID, st.Restarts)
	}
}
