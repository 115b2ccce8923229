package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/routinglayer/routing/host/config"
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
