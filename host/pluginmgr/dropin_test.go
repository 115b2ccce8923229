package pluginmgr_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/pluginmgr"
)

func TestDropInReplaceAndRemoveAtRuntime(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-steady")
	// Periodic rescans are off: only change notifications can act.
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) { c.RescanInterval = time.Hour })
	steady := h.waitState(t, "steady", pluginmgr.StateRunning, nil)

	installed := time.Now()
	install(t, dir, "watcher-new")
	first := h.waitState(t, "new", pluginmgr.StateRunning, nil)
	t.Logf("dropped-in plugin running %s after the copy", time.Since(installed).Round(time.Millisecond))
	if first.Info.Version != "1.0.0" {
		t.Fatalf("version %s", first.Info.Version)
	}

	v2 := filepath.Join(t.TempDir(), "probe-v2")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=2.0.0", "-o", v2, "./testdata/probe").CombinedOutput(); err != nil {
		t.Fatalf("build v2: %v\n%s", err, out)
	}
	installBinary(t, v2, dir, "watcher-new")
	second := h.waitState(t, "new", pluginmgr.StateRunning, func(st pluginmgr.Status) bool {
		return st.Info != nil && st.Info.Version == "2.0.0"
	})
	if second.PID == first.PID || alive(first.PID) {
		t.Fatalf("replacement kept the old process: %d -> %d", first.PID, second.PID)
	}

	must(t, os.Remove(filepath.Join(dir, "watcher-new")))
	waitFor(t, 30*time.Second, "the removed plugin to go", func() bool {
		_, err := h.m.Get("new")
		return errors.Is(err, pluginmgr.ErrUnknownPlugin) && !alive(second.PID)
	})
	if st := h.status(t, "steady"); st.PID != steady.PID || st.Restarts != 0 {
		t.Fatalf("the other plugin was disturbed: pid %d -> %d, restarts %d", steady.PID, st.PID, st.Restarts)
	}
}

func TestFileStillBeingWrittenIsNotStarted(t *testing.T) {
	dir := t.TempDir()
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) { c.Settle = 2 * time.Second })
	data, err := os.ReadFile(probeBin)
	must(t, err)
	// Written in place (no rename), slowly: the manager must wait.
	path := filepath.Join(dir, "watcher-slow")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	half := len(data) / 2
	_, err = f.Write(data[:half])
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	must(t, h.m.Rescan())
	if _, err := h.m.Get("slow"); !errors.Is(err, pluginmgr.ErrUnknownPlugin) {
		t.Fatalf("a half-written file was taken up: %v", err)
	}
	_, err = f.Write(data[half:])
	must(t, err)
	must(t, f.Close())
	h.waitState(t, "slow", pluginmgr.StateRunning, nil)
}
