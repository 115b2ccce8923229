package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/pluginmgr"
)

type testConfig struct {
	config.Common
	Port int `env:"SERVER_PORT" envDefault:"8000"`
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"SERVER_PORT=abc", `SERVER_PORT="abc"`},
		{"MAX_BODY_BYTES=lots", `MAX_BODY_BYTES="lots"`},
		{"LOG_LEVEL=loud", `LOG_LEVEL="loud"`},
		{"LOG_FORMAT=xml", `LOG_FORMAT="xml"`},
		{"MAX_BODY_BYTES=10", `MAX_BODY_BYTES=10`},
		{"DATABASE_URL=mysql://db", `DATABASE_URL`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			var cfg testConfig
			err := config.Load(&cfg, []string{tt.env})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line containing %s", err, tt.want)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	var cfg testConfig
	if err := config.Load(&cfg, []string{"DATA_DIR=/var/lib/routing"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 8000 || cfg.ServerHost != "127.0.0.1" || cfg.DataDir != "/var/lib/routing" || cfg.Addr(cfg.Port) != "127.0.0.1:8000" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestPluginSettingsDefaultToThePluginManagers(t *testing.T) {
	d := pluginmgr.DefaultConfig()
	for _, env := range [][]string{nil, {"PLUGINS_MIN_BACKOFF=", "PLUGINS_MAX_FAST_CRASHES="}} {
		var cfg testConfig
		if err := config.Load(&cfg, env); err != nil {
			t.Fatal(err)
		}
		got := cfg.PluginManager("pusher")
		if got.StartTimeout != d.StartTimeout || got.HealthInterval != d.HealthInterval || got.HealthTimeout != d.HealthTimeout ||
			got.MinBackoff != d.MinBackoff || got.MaxBackoff != d.MaxBackoff || got.MaxFastCrashes != d.MaxFastCrashes {
			t.Errorf("%v: plugin settings %+v, want pluginmgr.DefaultConfig's %+v", env, got, d)
		}
	}
	var cfg testConfig
	if err := config.Load(&cfg, []string{"PLUGINS_MIN_BACKOFF=2s", "PLUGINS_MAX_BACKOFF=1m"}); err != nil {
		t.Fatal(err)
	}
	if cfg.PluginsMinBackoff != 2*time.Second || cfg.PluginsMaxBackoff != time.Minute {
		t.Errorf("backoff %s-%s, want 2s-1m from the environment", cfg.PluginsMinBackoff, cfg.PluginsMaxBackoff)
	}
	if err := config.Load(&cfg, []string{"PLUGINS_MIN_BACKOFF=0"}); err == nil || !strings.Contains(err.Error(), "PLUGINS_MIN_BACKOFF") {
		t.Errorf("PLUGINS_MIN_BACKOFF=0: got %v, want it refused", err)
	}
}

func TestLoopbackOnlyWithoutTokens(t *testing.T) {
	tests := []struct {
		env     []string
		wantErr string
	}{
		{[]string{"SERVER_HOST=127.0.0.1"}, ""},
		{[]string{"SERVER_HOST=::1"}, ""},
		{[]string{"SERVER_HOST=0.0.0.0"}, "ALLOW_UNAUTHENTICATED"},
		{[]string{"SERVER_HOST=0.0.0.0", "ALLOW_UNAUTHENTICATED=true"}, ""},
		{[]string{"SERVER_HOST=0.0.0.0", "API_TOKENS=0123456789abcdef0123"}, ""},
		{[]string{"API_TOKENS=short"}, "at least 16"},
	}
	for _, tt := range tests {
		var cfg testConfig
		err := config.Load(&cfg, tt.env)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%v: got %v, want %q", tt.env, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "short") {
			t.Errorf("a token value leaked into the error: %v", err)
		}
	}
}

func TestInstance(t *testing.T) {
	var cfg testConfig
	if err := config.Load(&cfg, []string{"DATA_DIR=/var/lib/routing"}); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if got := cfg.Instance(); got != host+":/var/lib/routing" {
		t.Fatalf("default instance %q, want the host name and DATA_DIR", got)
	}
	if err := config.Load(&cfg, []string{"INSTANCE_ID=tower-2"}); err != nil || cfg.Instance() != "tower-2" {
		t.Fatalf("INSTANCE_ID=tower-2: %q, %v", cfg.Instance(), err)
	}
	for _, bad := range []string{" tower", "tower\n2", strings.Repeat("x", 201)} {
		err := config.Load(&cfg, []string{"INSTANCE_ID=" + bad})
		if err == nil || !strings.Contains(err.Error(), "INSTANCE_ID") {
			t.Fatalf("INSTANCE_ID=%q: %v, want an error naming the variable", bad, err)
		}
	}
}

// The tracing variables are read with the rest: set, they configure it;
// a bad value is named like any other.
func TestTracingVariables(t *testing.T) {
	var cfg testConfig
	if err := config.Load(&cfg, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "OTEL_SERVICE_NAME=tower-a"}); err != nil {
		t.Fatal(err)
	}
	if !cfg.Tracing.Enabled() || cfg.Tracing.ServiceName != "tower-a" {
		t.Fatalf("tracing %+v: want it on, named tower-a", cfg.Tracing)
	}
	for _, tt := range []struct{ env, want string }{
		{"OTEL_SDK_DISABLED=yes", `OTEL_SDK_DISABLED="yes": want a value of type bool`},
		{"OTEL_EXPORTER_OTLP_PROTOCOL=thrift", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_TRACES_SAMPLER=sometimes", "OTEL_TRACES_SAMPLER"},
	} {
		var cfg testConfig
		err := config.Load(&cfg, []string{tt.env})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.env, err, tt.want)
		}
	}
}
