package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/service"
)

type testConfig struct {
	config.Common
	Port int `env:"SERVER_PORT" envDefault:"8000"`
}

func TestRunStopsBeforeStartingOnABadConfiguration(t *testing.T) {
	started := false
	err := service.Run(t.Context(), "test", []string{"SERVER_PORT=abc"}, func(context.Context, testConfig, hclog.Logger) (*service.Service, error) {
		started = true
		return nil, errors.New("unreachable")
	})
	if err == nil || !strings.Contains(err.Error(), `SERVER_PORT="abc"`) || started {
		t.Fatalf("got %v (started %v), want the variable named and no start", err, started)
	}
}

func TestRunHandsStartTheLoadedConfiguration(t *testing.T) {
	environ := []string{"SERVER_PORT=9", "DATA_DIR=/srv/routing", "PLUGIN_X_Y=z"}
	failed := errors.New("store unreachable")
	var got testConfig
	err := service.Run(t.Context(), "test", environ, func(_ context.Context, cfg testConfig, _ hclog.Logger) (*service.Service, error) {
		got = cfg
		return nil, failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("got %v, want the start's error", err)
	}
	if got.Port != 9 || got.DataDir != "/srv/routing" || len(got.Environ) != len(environ) || got.PluginsMinBackoff == 0 {
		t.Fatalf("start got %+v, want the environment loaded, plugin defaults filled and Environ set", got)
	}
}
