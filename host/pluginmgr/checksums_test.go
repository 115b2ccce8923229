package pluginmgr_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/pluginmgr"
)

func TestChecksumsRefuseUnlistedOrChangedBinaries(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-listed", "watcher-wrong", "watcher-unlisted")
	data, err := os.ReadFile(probeBin)
	must(t, err)
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	must(t, os.WriteFile(sums, fmt.Appendf(nil, "%x  watcher-listed\n%x *watcher-wrong\n", sha256.Sum256(data), sha256.Sum256([]byte("other"))), 0o600))

	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) { c.Checksums = sums })
	h.waitState(t, "listed", pluginmgr.StateRunning, nil)
	reasons := map[string]string{}
	for _, s := range h.m.Skipped() {
		reasons[s.File] = s.Reason
	}
	if !strings.Contains(reasons["watcher-wrong"], "does not match") || !strings.Contains(reasons["watcher-unlisted"], "not listed") {
		t.Fatalf("refusals: %v", reasons)
	}
	for _, name := range []string{"wrong", "unlisted"} {
		if _, err := h.m.Get(name); err == nil {
			t.Errorf("refused plugin %s was started", name)
		}
	}

	// The listed file replaced by other content is refused and stopped.
	running := h.status(t, "listed")
	must(t, os.WriteFile(filepath.Join(dir, ".tmp"), append(data, 0), 0o755))
	must(t, os.Rename(filepath.Join(dir, ".tmp"), filepath.Join(dir, "watcher-listed")))
	waitFor(t, 30*time.Second, "the tampered plugin to be stopped", func() bool {
		_, err := h.m.Get("listed")
		return err != nil && !alive(running.PID)
	})
	found := false
	for _, s := range h.m.Skipped() {
		found = found || (s.File == "watcher-listed" && strings.Contains(s.Reason, "does not match"))
	}
	if !found {
		t.Fatalf("tampered file not shown as refused: %+v", h.m.Skipped())
	}
}
