package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/config"
)

// IDEMPOTENCY_TTL defaults to 24h; a value that is not a duration, or is
// under 1s, stops the start with one line naming the variable.
func TestIdempotencyTTL(t *testing.T) {
	var cfg testConfig
	if err := config.Load(&cfg, nil); err != nil || cfg.IdempotencyTTL != 24*time.Hour {
		t.Fatalf("default: %s %v", cfg.IdempotencyTTL, err)
	}
	if err := config.Load(&cfg, []string{"IDEMPOTENCY_TTL=72h"}); err != nil || cfg.IdempotencyTTL != 72*time.Hour {
		t.Fatalf("72h: %s %v", cfg.IdempotencyTTL, err)
	}
	for _, v := range []string{"tomorrow", "500ms", "0s", "-1h"} {
		var cfg testConfig
		err := config.Load(&cfg, []string{"IDEMPOTENCY_TTL=" + v})
		if err == nil || !strings.Contains(err.Error(), "IDEMPOTENCY_TTL") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", v, err)
		}
	}
}
