package controltower_test

import (
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
)

func TestWatcherLeaseTTLSetting(t *testing.T) {
	var cfg controltower.Config
	must(t, config.Load(&cfg, nil))
	if cfg.WatcherLeaseTTL != 10*time.Second {
		t.Fatalf("default WATCHER_LEASE_TTL = %s, want 10s", cfg.WatcherLeaseTTL)
	}
	must(t, config.Load(&cfg, []string{"WATCHER_LEASE_TTL=3s"}))
	if cfg.WatcherLeaseTTL != 3*time.Second {
		t.Fatalf("WATCHER_LEASE_TTL=3s read as %s", cfg.WatcherLeaseTTL)
	}
	for _, bad := range []string{"500ms", "0s", "-1s", "ten"} {
		err := config.Load(&cfg, []string{"WATCHER_LEASE_TTL=" + bad})
		if err == nil || !strings.Contains(err.Error(), "WATCHER_LEASE_TTL") {
			t.Errorf("WATCHER_LEASE_TTL=%s: %v, want an error naming the variable", bad, err)
		}
	}
}
