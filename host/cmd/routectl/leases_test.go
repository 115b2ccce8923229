package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// leasedPlugin is a plugin's status as far as the lease tests look.
type leasedPlugin struct {
	Name, State, Holder string
	PID, Restarts       int
}

// plugin is the one plugin the tower lists, zero before its first scan.
func (c cli) plugin(t *testing.T) leasedPlugin {
	t.Helper()
	var list struct{ Plugins []leasedPlugin }
	c.jsonOf(t, &list, "plugins")
	switch len(list.Plugins) {
	case 0:
		return leasedPlugin{} // not found yet
	case 1:
		return list.Plugins[0]
	}
	t.Fatalf("plugins: %+v", list.Plugins)
	return leasedPlugin{}
}

// Two control-towers on one PostgreSQL schema, each with watcher-probe
// installed: routectl shows where it runs, and stop, start and restart
// asked of either act on the pair.
func TestLeasedWatcherAcrossTwoTowers(t *testing.T) {
	db := testkit.PostgresURL(t)
	towers := map[string]cli{}
	for _, id := range []string{"tower-a", "tower-b"} {
		plugins := t.TempDir()
		data, err := os.ReadFile(bins["watcher-probe"])
		must(t, err)
		must(t, os.WriteFile(filepath.Join(plugins, "watcher-probe"), data, 0o755))
		towers[id] = startTower(t, "DATABASE_URL="+db, "INSTANCE_ID="+id, "PLUGINS_DIR="+plugins, "WATCHER_LEASE_TTL=1s")
	}
	// pair waits until one tower runs the watcher and the other stands by
	// naming it; it returns the holder's id and the standby's.
	pair := func() (holder, standby string) {
		t.Helper()
		waitFor(t, 60*time.Second, "one tower to run the watcher and the other to stand by", func() bool {
			a, b := towers["tower-a"].plugin(t), towers["tower-b"].plugin(t)
			switch {
			case a.State == "running" && b.State == "standby" && b.Holder == "tower-a" && a.Holder == "tower-a":
				holder, standby = "tower-a", "tower-b"
			case b.State == "running" && a.State == "standby" && a.Holder == "tower-b" && b.Holder == "tower-b":
				holder, standby = "tower-b", "tower-a"
			default:
				return false
			}
			return true
		})
		return holder, standby
	}
	holder, standby := pair()
	first := towers[holder].plugin(t)

	header := "NAME KIND STATE HOLDER PID VERSION RESTARTS LAST ERROR"
	if rows := tableRows(t, towers[standby].ok(t, "plugins"), header); len(rows) != 1 ||
		strings.Join(rows[0][:5], " ") != "probe watcher standby "+holder+" -" {
		t.Fatalf("standby's plugins table: %q", rows)
	}
	if rows := tableRows(t, towers[holder].ok(t, "plugins"), header); len(rows) != 1 ||
		strings.Join(rows[0][:5], " ") != "probe watcher running "+holder+" "+strconv.Itoa(first.PID) {
		t.Fatalf("holder's plugins table: %q", rows)
	}

	// Restart through the standby: the holder restarts its process.
	if out := towers[standby].ok(t, "restart", "probe"); out != "restart of probe requested: it runs on "+holder+", which restarts it (standby here)\n" {
		t.Fatalf("restart through the standby: %q", out)
	}
	waitFor(t, 30*time.Second, "the holder to restart the watcher", func() bool {
		p := towers[holder].plugin(t)
		return p.State == "running" && p.PID != first.PID
	})
	// Through the holder, as without leases.
	out := towers[holder].ok(t, "restart", "probe")
	if m := regexp.MustCompile(`^restarted probe: running, pid (\d+)\n$`).FindStringSubmatch(out); m == nil || m[1] == strconv.Itoa(first.PID) {
		t.Fatalf("restart through the holder: %q", out)
	}

	// Stop through the standby: stopped on both.
	if out := towers[standby].ok(t, "stop", "probe"); out != "stop probe: stopped\n" {
		t.Fatalf("stop: %q", out)
	}
	waitFor(t, 30*time.Second, "the holder to stop the watcher", func() bool {
		p := towers[holder].plugin(t)
		return p.State == "stopped" && p.PID == 0 && p.Holder == ""
	})
	// Start through the holder: it runs on one of them.
	out = towers[holder].ok(t, "start", "probe")
	if out != "start probe: running\n" && !strings.HasPrefix(out, "start probe: standby, runs on tower-") {
		t.Fatalf("start: %q", out)
	}
	pair()
}
