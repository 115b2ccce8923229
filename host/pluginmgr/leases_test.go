package pluginmgr_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

var errInstanceDown = errors.New("instance down: no database")

// storeLeases is pluginmgr.Leases over the store for one instance, as the
// control-tower wires it. While down, every call fails without reaching
// the database: the instance neither renews nor releases, as if it had
// died or lost the database.
type storeLeases struct {
	st     *store.Store
	holder string
	down   atomic.Bool
}

func (l *storeLeases) Acquire(ctx context.Context, name string, ttl time.Duration) (pluginmgr.Lease, error) {
	if l.down.Load() {
		return pluginmgr.Lease{}, errInstanceDown
	}
	sl, held, err := l.st.LeaseAcquire(ctx, name, l.holder, ttl)
	if err != nil {
		return pluginmgr.Lease{}, err
	}
	return pluginmgr.Lease{Held: held, Holder: sl.Holder, Stopped: sl.Stopped, Restarts: sl.Restarts, Starts: sl.Starts}, nil
}

func (l *storeLeases) Release(ctx context.Context, name string) error {
	if l.down.Load() {
		return errInstanceDown
	}
	return l.st.LeaseRelease(ctx, name, l.holder)
}

func (l *storeLeases) Stop(ctx context.Context, name string) error {
	return l.st.LeaseStop(ctx, name)
}

func (l *storeLeases) Start(ctx context.Context, name string) error {
	return l.st.LeaseStart(ctx, name)
}

func (l *storeLeases) Restart(ctx context.Context, name string) error {
	return l.st.LeaseRestart(ctx, name)
}

func openStore(tb testing.TB, url string) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), store.Config{DatabaseURL: url}, hclog.NewNullLogger())
	must(tb, err)
	tb.Cleanup(func() { st.Close() })
	return st
}

// instance is one service's plugin manager sharing the database.
type instance struct {
	*harness
	id     string
	leases *storeLeases
}

// startInstance runs a watcher manager with leases as instance id, on its
// own plugins directory holding the probe as watcher-shared, with its
// own connection pool to the database at url.
func startInstance(tb testing.TB, url, id string, ttl time.Duration) *instance {
	tb.Helper()
	st := openStore(tb, url)
	dir := tb.TempDir()
	install(tb, dir, "watcher-shared")
	leases := &storeLeases{st: st, holder: id}
	h := startManagerWith(tb, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) {
		c.Leases, c.LeaseTTL = leases, ttl
	}, func(name string) sdk.State { return st.PluginState(name) })
	return &instance{harness: h, id: id, leases: leases}
}

// overlapWatch fails the test if two instances ever run a process of the
// watcher at the same time.
func overlapWatch(t *testing.T, name string, insts ...*instance) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			var pids []int
			for _, in := range insts {
				if st, err := in.m.Get(name); err == nil && st.PID != 0 {
					pids = append(pids, st.PID)
				}
			}
			// Every pid was launched before these checks, so two alive
			// now were alive together.
			var live []int
			for _, pid := range pids {
				if alive(pid) {
					live = append(live, pid)
				}
			}
			if len(live) > 1 {
				t.Errorf("processes %v of %s run at the same time", live, name)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitHolder waits until exactly one of insts runs the watcher and every
// other one is standby naming it; it returns the holder and the others.
func waitHolder(t *testing.T, name string, insts ...*instance) (*instance, []*instance) {
	t.Helper()
	var (
		holder *instance
		others []*instance
	)
	waitFor(t, 30*time.Second, "one instance to run "+name+" and the others to stand by", func() bool {
		holder, others = nil, nil
		for _, in := range insts {
			st, _ := in.m.Get(name)
			switch {
			case st.State == pluginmgr.StateRunning && st.Holder == in.id && holder == nil:
				holder = in
			case st.State == pluginmgr.StateStandby:
				others = append(others, in)
			default:
				return false
			}
		}
		if holder == nil {
			return false
		}
		for _, o := range others {
			if st, _ := o.m.Get(name); st.Holder != holder.id || st.PID != 0 {
				return false
			}
		}
		return true
	})
	return holder, others
}

// waitReport waits for a report of the probe process pid and returns it.
func (in *instance) waitReport(t *testing.T, name string, pid int) report {
	t.Helper()
	var got report
	waitFor(t, 30*time.Second, fmt.Sprintf("a report from pid %d", pid), func() bool {
		for _, r := range in.sink.get(name) {
			if r.PID == pid {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func TestLeasesRunAWatcherInOneInstance(t *testing.T) {
	const (
		name = "shared"
		ttl  = 1500 * time.Millisecond
	)
	db := testkit.PostgresURL(t)
	a := startInstance(t, db, "host-a:/data", ttl)
	b := startInstance(t, db, "host-b:/data", ttl)
	overlapWatch(t, name, a, b)

	holder, others := waitHolder(t, name, a, b)
	standby := others[0]
	first := holder.status(t, name)
	if r := holder.waitReport(t, name, first.PID); r.Runs != 1 {
		t.Fatalf("first run counted %d runs in State, want 1", r.Runs)
	}
	if n := len(standby.sink.get(name)); n != 0 {
		t.Fatalf("the standby instance ran the watcher (%d reports)", n)
	}

	// The operator API shows standby and the holder.
	r := mux.NewRouter()
	standby.m.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/plugins")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct{ Plugins []pluginmgr.Status }
	must(t, json.Unmarshal(body, &list))
	if len(list.Plugins) != 1 || list.Plugins[0].State != pluginmgr.StateStandby || list.Plugins[0].Holder != holder.id {
		t.Fatalf("GET /plugins on the standby instance: %s", body)
	}

	// A restart asked of the standby instance restarts the holder's
	// process; the plugin carries on from its State.
	must(t, standby.m.Restart(context.Background(), name))
	second := holder.waitState(t, name, pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.PID != first.PID })
	if second.Restarts != 1 || second.Holder != holder.id {
		t.Fatalf("after a restart through the standby instance: %+v", second)
	}
	if r := holder.waitReport(t, name, second.PID); r.Runs != 2 {
		t.Fatalf("restarted run counted %d runs, want 2", r.Runs)
	}
	if st := standby.status(t, name); st.State != pluginmgr.StateStandby || st.Holder != holder.id {
		t.Fatalf("standby after a restart: %+v", st)
	}
	// And one asked of the holder, at once.
	must(t, holder.m.Restart(context.Background(), name))
	third := holder.waitState(t, name, pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.PID != second.PID })
	if third.Restarts != 2 {
		t.Fatalf("restarts = %d, want 2", third.Restarts)
	}

	// A stop asked of the standby instance stops it everywhere.
	must(t, standby.m.Stop(context.Background(), name))
	for _, in := range []*instance{a, b} {
		st := in.waitState(t, name, pluginmgr.StateStopped, nil)
		if st.Holder != "" || st.PID != 0 {
			t.Fatalf("%s after a stop: %+v", in.id, st)
		}
	}
	waitFor(t, 10*time.Second, "the holder's process to be gone", func() bool { return !alive(third.PID) })
	if l, err := holder.leases.st.LeaseGet(context.Background(), name); err != nil || !l.Stopped || l.Holder != "" {
		t.Fatalf("lease after a stop: %+v, %v", l, err)
	}
	// It stays stopped: both instances keep asking, neither takes it.
	reports := len(a.sink.get(name)) + len(b.sink.get(name))
	deadline := time.Now().Add(2 * ttl)
	for time.Now().Before(deadline) {
		for _, in := range []*instance{a, b} {
			if st := in.status(t, name); st.State != pluginmgr.StateStopped {
				t.Fatalf("%s left stopped: %+v", in.id, st)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(a.sink.get(name)) + len(b.sink.get(name)); n != reports {
		t.Fatalf("a stopped watcher ran: %d reports, then %d", reports, n)
	}

	// A start asked of either runs it in exactly one instance.
	must(t, holder.m.Start(context.Background(), name))
	holder, others = waitHolder(t, name, a, b)
	standby = others[0]
	running := holder.status(t, name)
	if r := holder.waitReport(t, name, running.PID); r.Runs != 4 {
		t.Fatalf("run after the start counted %d runs, want 4", r.Runs)
	}

	// The holder goes quiet without releasing (it lost the database, or
	// it hangs): it stops its process before its lease expires, and the
	// other instance takes the watcher over.
	quiet := time.Now()
	holder.leases.down.Store(true)
	waitFor(t, 10*time.Second, "the holder that cannot renew to stop its process", func() bool { return !alive(running.PID) })
	stopped := time.Since(quiet)
	took := standby.waitState(t, name, pluginmgr.StateRunning, nil)
	takeover := time.Since(quiet)
	t.Logf("ttl %s: the silent holder stopped its process after %s; the other instance ran the watcher after %s", ttl, stopped.Round(time.Millisecond), takeover.Round(time.Millisecond))
	if bound := ttl + ttl/5 + 2*time.Second; takeover > bound {
		t.Errorf("takeover took %s, want at most %s", takeover, bound)
	}
	if took.Holder != standby.id {
		t.Fatalf("new holder status: %+v", took)
	}
	if r := standby.waitReport(t, name, took.PID); r.Runs != 5 {
		t.Fatalf("the run after the takeover counted %d runs, want 5: State did not carry over", r.Runs)
	}
	st := holder.waitState(t, name, pluginmgr.StateStandby, nil)
	if !strings.Contains(st.LastError, "lease") {
		t.Errorf("the silent holder's last error %q does not name the lease", st.LastError)
	}
	// Back on the database, it stands by for the new holder.
	holder.leases.down.Store(false)
	holder.waitState(t, name, pluginmgr.StateStandby, func(st pluginmgr.Status) bool { return st.Holder == standby.id })
}

// runLeaseHost is a plugin host with leases in a child process, for the
// test that kills a holder with SIGKILL: instance id "killed-host", the
// default TTL, the probe's State in the database at db. It writes its
// watcher's pid to dir/pid once it runs.
func runLeaseHost(dir, db string) {
	logger := hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	st, err := store.Open(context.Background(), store.Config{DatabaseURL: db}, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m := pluginmgr.New(pluginmgr.Config{
		Dir: dir, Kind: pluginhost.KindWatcher, Environ: []string{"PATH=" + os.Getenv("PATH")},
		Leases: &storeLeases{st: st, holder: "killed-host"},
	}, func(ctx context.Context, p *pluginmgr.Plugin) error {
		return p.Client.(pluginhost.WatcherClient).Run(ctx, sinkFunc(func(context.Context, pluginhost.Emission) (sdk.Receipt, error) {
			return sdk.Receipt{UUID: "u"}, nil
		}), st.PluginState(p.Name))
	}, logger)
	go func() {
		for {
			if s, err := m.Get("shared"); err == nil && s.State == pluginmgr.StateRunning {
				_ = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(s.PID)), 0o600)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_ = m.Run(context.Background())
}

func TestLeaseTakeoverAfterHolderKilled(t *testing.T) {
	const name = "shared"
	db := testkit.PostgresURL(t)
	dir := t.TempDir()
	install(t, dir, "watcher-"+name)
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), "PLUGINMGR_TEST_HOST_DIR="+dir, "PLUGINMGR_TEST_LEASE_DB="+db)
	host.Stderr = os.Stderr
	must(t, host.Start())
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	var pid int
	waitFor(t, 30*time.Second, "the helper host to run the watcher", func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			return false
		}
		pid, _ = strconv.Atoi(string(data))
		return pid > 0
	})

	// The default TTL, as a control-tower runs it.
	survivor := startInstance(t, db, "survivor", 0)
	survivor.waitState(t, name, pluginmgr.StateStandby, func(st pluginmgr.Status) bool { return st.Holder == "killed-host" })

	killed := time.Now()
	must(t, host.Process.Signal(syscall.SIGKILL))
	_ = host.Wait()
	st := survivor.waitState(t, name, pluginmgr.StateRunning, nil)
	takeover := time.Since(killed)
	t.Logf("default ttl %s: the survivor ran the watcher %s after the holder was killed", pluginmgr.DefaultLeaseTTL, takeover.Round(time.Millisecond))
	if takeover > 15*time.Second {
		t.Errorf("takeover after kill -9 took %s, want under 15s", takeover)
	}
	if alive(pid) {
		t.Errorf("the killed holder's watcher (pid %d) is still alive", pid)
	}
	if st.Holder != "survivor" {
		t.Errorf("holder %q, want survivor", st.Holder)
	}
	if r := survivor.waitReport(t, name, st.PID); r.Runs != 2 {
		t.Errorf("the survivor's run counted %d runs, want 2: State did not carry over", r.Runs)
	}
}

// An instance that finds its lease held by another (its renewal came too
// late) stops its process at its next renewal, stands by, and takes the
// watcher back once the other releases it.
func TestLeaseTakenByAnotherStopsTheProcess(t *testing.T) {
	const (
		name = "shared"
		ttl  = 1500 * time.Millisecond
	)
	db := testkit.PostgresURL(t)
	a := startInstance(t, db, "host-a:/data", ttl)
	first := a.waitState(t, name, pluginmgr.StateRunning, nil)

	raw, err := sql.Open("pgx", db)
	must(t, err)
	t.Cleanup(func() { raw.Close() })
	taken := time.Now()
	_, err = raw.Exec("UPDATE watcher_leases SET holder = 'intruder', expires_at = expires_at + 60000000 WHERE name = $1", name)
	must(t, err)
	st := a.waitState(t, name, pluginmgr.StateStandby, func(st pluginmgr.Status) bool { return st.Holder == "intruder" })
	waitFor(t, 5*time.Second, "the process to be gone", func() bool { return !alive(first.PID) })
	if d := time.Since(taken); d > ttl/3+2*time.Second {
		t.Errorf("the process stopped %s after the lease was taken, want within a renewal (%s)", d, ttl/3)
	}
	if !strings.Contains(st.LastError, "held by intruder") {
		t.Errorf("last error %q does not name the new holder", st.LastError)
	}

	must(t, a.leases.st.LeaseRelease(context.Background(), name, "intruder"))
	again := a.waitState(t, name, pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.Holder == a.id })
	if again.PID == first.PID {
		t.Fatal("no new process after taking the lease back")
	}
}
