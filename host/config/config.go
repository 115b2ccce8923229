// Package config loads a service's configuration from environment
// variables (caarlos0/env) and builds its logger. Each service embeds
// Common in its own struct; a bad value fails the start with one line that
// names the variable.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v10"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/server"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Common is the configuration every service shares.
type Common struct {
	ServerHost string `env:"SERVER_HOST" envDefault:"127.0.0.1"`
	PluginsDir string `env:"PLUGINS_DIR" envDefault:"bin/plugins"`
	// PluginsChecksums names a sha256sum-format file of allowed plugins.
	PluginsChecksums string `env:"PLUGINS_CHECKSUMS"`
	DataDir          string `env:"DATA_DIR" envDefault:"data"`
	DatabaseURL      string `env:"DATABASE_URL"`
	InstanceID       string `env:"INSTANCE_ID"` // see Instance
	LogLevel         string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat        string `env:"LOG_FORMAT" envDefault:"text"`
	// APITokens open the data and trigger endpoints, AdminTokens every
	// endpoint (comma-separated bearer tokens).
	APITokens   []string `env:"API_TOKENS" envSeparator:","`
	AdminTokens []string `env:"ADMIN_TOKENS" envSeparator:","`
	// AllowedOrigins are the origins (scheme://host[:port]) of web pages
	// that may call the service; requests from any other page are refused.
	AllowedOrigins []string `env:"ALLOWED_ORIGINS" envSeparator:","`
	// AllowedHosts are host names, beyond loopback ones, the service
	// answers under while it listens on loopback without tokens.
	AllowedHosts []string `env:"ALLOWED_HOSTS" envSeparator:","`
	// AllowUnauthenticated allows listening beyond loopback without tokens.
	AllowUnauthenticated bool `env:"ALLOW_UNAUTHENTICATED" envDefault:"false"`
	// TLSCertFile and TLSKeyFile make the service serve HTTPS.
	TLSCertFile string `env:"TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TLS_KEY_FILE"`
	// Plugin supervision. Their defaults are the plugin manager's
	// (pluginmgr.DefaultConfig), which Load fills in before it reads the
	// environment.
	PluginsStartTimeout   time.Duration `env:"PLUGINS_START_TIMEOUT"`
	PluginsHealthInterval time.Duration `env:"PLUGINS_HEALTH_INTERVAL"`
	PluginsHealthTimeout  time.Duration `env:"PLUGINS_HEALTH_TIMEOUT"`
	PluginsMinBackoff     time.Duration `env:"PLUGINS_MIN_BACKOFF"`
	PluginsMaxBackoff     time.Duration `env:"PLUGINS_MAX_BACKOFF"`
	PluginsMaxFastCrashes int           `env:"PLUGINS_MAX_FAST_CRASHES"`
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there.
	DebugAddr string `env:"DEBUG_ADDR"`
	// MaxBodyBytes bounds a request body, after decompression. 16 MiB
	// holds about 9,800 rows of a bioreactor's 48 columns (1.7 kB each):
	// a relay that resends its whole backlog after an outage still fits.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"16777216"`
	// IdempotencyTTL is how long an accepted request's Idempotency-Key
	// is kept: a repeat within it gets the original answer.
	IdempotencyTTL time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`
	// Tracing is the OpenTelemetry configuration (OTEL_*): spans are
	// exported only while an OTLP endpoint is set.
	Tracing tracing.Config
	// Environ is the environment plugins' variables come from; set by
	// the caller, not read from a variable.
	Environ []string `env:"-"`
	// SeriesInterval is the time between two samples of the status
	// page's charts; 0 is every 5s. Not read from a variable: tests
	// shorten it.
	SeriesInterval time.Duration `env:"-"`
}

// Addr is the listen address for port.
func (c Common) Addr(port int) string {
	return net.JoinHostPort(c.ServerHost, strconv.Itoa(port))
}

// Instance names this instance among those sharing a database: the owner
// of its claims and leases, and its name in logs and /status. It is
// INSTANCE_ID, or by default the host name and the absolute DATA_DIR
// ("lab-1:/var/lib/routing"), which stays the same across restarts, so a
// restarted instance can release the claims its previous run held.
func (c Common) Instance() string {
	if c.InstanceID != "" {
		return c.InstanceID
	}
	host, _ := os.Hostname()
	dir := c.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ":" + dir
}

// Validate checks the shared settings.
func (c Common) Validate() error {
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("LOG_LEVEL=%q: want trace, debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("LOG_FORMAT=%q: want text or json", c.LogFormat)
	}
	if id := c.InstanceID; id != "" && (len(id) > 200 || strings.TrimSpace(id) != id ||
		strings.ContainsFunc(id, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError })) {
		return fmt.Errorf("INSTANCE_ID=%q: want at most 200 characters, no control characters, no leading or trailing spaces", id)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("MAX_BODY_BYTES=%d: want at least 1024", c.MaxBodyBytes)
	}
	if c.IdempotencyTTL < time.Second {
		return fmt.Errorf("IDEMPOTENCY_TTL=%s: want at least 1s (how long a request's Idempotency-Key is kept, e.g. 24h)", c.IdempotencyTTL)
	}
	for _, list := range [][]string{c.APITokens, c.AdminTokens} {
		for _, tok := range list {
			if strings.TrimSpace(tok) == "" || len(tok) < 16 {
				return errors.New("API_TOKENS/ADMIN_TOKENS: every token must be at least 16 characters (a value is not shown)")
			}
		}
	}
	if len(c.APITokens)+len(c.AdminTokens) == 0 && !c.AllowUnauthenticated && !isLoopback(c.ServerHost) {
		return fmt.Errorf("SERVER_HOST=%q without API_TOKENS or ADMIN_TOKENS: set tokens, or ALLOW_UNAUTHENTICATED=true to serve anyone who can reach it", c.ServerHost)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PLUGINS_START_TIMEOUT", c.PluginsStartTimeout}, {"PLUGINS_HEALTH_INTERVAL", c.PluginsHealthInterval},
		{"PLUGINS_HEALTH_TIMEOUT", c.PluginsHealthTimeout}, {"PLUGINS_MIN_BACKOFF", c.PluginsMinBackoff},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s=%s: want a positive duration", d.name, d.v)
		}
	}
	if c.PluginsMaxBackoff < c.PluginsMinBackoff {
		return fmt.Errorf("PLUGINS_MAX_BACKOFF=%s: want at least PLUGINS_MIN_BACKOFF (%s)", c.PluginsMaxBackoff, c.PluginsMinBackoff)
	}
	if c.PluginsMaxFastCrashes < 1 {
		return fmt.Errorf("PLUGINS_MAX_FAST_CRASHES=%d: want at least 1", c.PluginsMaxFastCrashes)
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(strings.TrimSpace(o)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return fmt.Errorf("ALLOWED_ORIGINS: %q is not an origin: want scheme://host[:port], e.g. https://lims.example.org", o)
		}
	}
	for _, h := range c.AllowedHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, ":/ ") {
			return fmt.Errorf("ALLOWED_HOSTS: %q is not a host name: want names without scheme or port, e.g. robots.lab.internal", h)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("TLS_CERT_FILE and TLS_KEY_FILE: set both, or neither")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errors.New("DATABASE_URL: want a postgres:// URL (leave it unset for the embedded SQLite database)")
	}
	return c.Tracing.Validate()
}

// PluginManager is the plugin manager's configuration for plugins of
// kind, whose variables come from Environ.
func (c Common) PluginManager(kind pluginhost.Kind) pluginmgr.Config {
	return pluginmgr.Config{
		Dir:            c.PluginsDir,
		Checksums:      c.PluginsChecksums,
		Kind:           kind,
		Environ:        c.Environ,
		RunDir:         filepath.Join(c.DataDir, "run"),
		StartTimeout:   c.PluginsStartTimeout,
		HealthInterval: c.PluginsHealthInterval,
		HealthTimeout:  c.PluginsHealthTimeout,
		MinBackoff:     c.PluginsMinBackoff,
		MaxBackoff:     c.PluginsMaxBackoff,
		MaxFastCrashes: c.PluginsMaxFastCrashes,
	}
}

// Tokens are the configured bearer tokens.
func (c Common) Tokens() httpapi.Tokens {
	return httpapi.Tokens{API: c.APITokens, Admin: c.AdminTokens}
}

// Access is whom the service admits: its tokens, the origins allowed to
// call it, and, while it listens on loopback without tokens, the host
// names it answers under.
func (c Common) Access() server.Access {
	tokens := c.Tokens()
	return server.Access{
		Tokens: tokens,
		Origins: httpapi.Origins{
			AllowedOrigins: c.AllowedOrigins,
			CheckHost:      !tokens.Enabled() && isLoopback(c.ServerHost),
			AllowedHosts:   c.AllowedHosts,
		},
		Listen: c.ServerHost,
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Shared is the Common a service's Config embeds, for code given the
// whole Config (Load, the services' Run).
func (c *Common) Shared() *Common { return c }

// pluginDefaults gives the settings whose defaults belong to the plugin
// manager their value there.
func (c *Common) pluginDefaults() {
	d := pluginmgr.DefaultConfig()
	c.PluginsStartTimeout, c.PluginsHealthInterval, c.PluginsHealthTimeout = d.StartTimeout, d.HealthInterval, d.HealthTimeout
	c.PluginsMinBackoff, c.PluginsMaxBackoff, c.PluginsMaxFastCrashes = d.MinBackoff, d.MaxBackoff, d.MaxFastCrashes
}

// Load fills cfg, a pointer to a struct with env tags, from environ
// ("KEY=value" strings, as os.Environ returns them), then calls its
// Validate method if it has one. A variable unset or empty gives its
// field the envDefault of its tag, or, for Common's plugin settings,
// pluginmgr.DefaultConfig's. When cfg embeds Common, its Environ is
// environ: the plugins' variables come from the same place. The error is
// one line naming the variable.
func Load(cfg any, environ []string) error {
	common, _ := cfg.(interface{ Shared() *Common })
	if common != nil {
		common.Shared().pluginDefaults()
	}
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: m}); err != nil {
		return fmt.Errorf("configuration: %s", describe(cfg, m, err))
	}
	if common != nil {
		common.Shared().Environ = environ
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
	}
	return nil
}

// describe rewrites env's errors to name the variable and its value
// rather than the Go field.
func describe(cfg any, environ map[string]string, err error) string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err.Error()
	}
	vars := envTags(reflect.TypeOf(cfg))
	parts := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if name, ok := vars[pe.Name]; ok {
				parts = append(parts, fmt.Sprintf("%s=%q: want a value of type %s", name, environ[name], pe.Type))
				continue
			}
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// envTags maps field names to their variables, embedded structs included.
func envTags(t reflect.Type) map[string]string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" && (f.Anonymous || f.IsExported()) {
			for k, v := range envTags(f.Type) {
				out[k] = v
			}
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" && name != "-" {
			out[f.Name] = name
		}
	}
	return out
}

// NewLogger builds the service's root logger.
func NewLogger(name string, c Common, out io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(c.LogLevel),
		JSONFormat: c.LogFormat == "json",
		Output:     out,
	})
}
