// Package service is what the control-tower and the data-gateway share as
// running services: the skeleton of their commands (Main, Run: signals,
// configuration, logger, profiler, start, wait), their assembly around a
// store, a metrics registry, a plugin manager and one HTTP server (Open,
// then Base.Serve with the service's own Parts), the order they shut down
// in, and the Service both return. Each service's package adds only what
// is its own: host/controltower its intake, relay and publisher,
// host/datagateway its spool.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/idempotency"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/server"
	"github.com/routinglayer/routing/host/statuspage"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
)

// Main is a service command's whole main: it runs the service start
// starts (see Run) with a context that ends on SIGINT or SIGTERM and the
// process's environment, and exits 1 after printing "<name>: <error>"
// when that fails.
func Main[C any, P configOf[C]](name string, start StartFunc[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := Run[C, P](ctx, name, os.Environ(), start)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// StartFunc starts a service on its configuration: controltower.Start,
// datagateway.Start.
type StartFunc[C any] func(context.Context, C, hclog.Logger) (*Service, error)

// configOf is a pointer to a service's Config, which embeds config.Common.
type configOf[C any] interface {
	*C
	Shared() *config.Common
}

// defaultMemoryLimit is the Go runtime's soft memory limit for a service
// when GOMEMLIMIT is not set: under load the collector runs before the
// heap doubles, which keeps a service's resident memory (its binary's
// code and tables, about 21 MiB, included) under 64 MiB; the gateway's
// live heap under the benchmark's load is about 11 MiB. A limit is soft:
// a request larger than it is still served, with the collector working
// harder meanwhile.
const defaultMemoryLimit = 32 << 20

// Run runs a service until ctx ends: it loads the service's Config from
// environ (see config.Load; environ is also where the plugins' variables
// come from), logs to stderr, serves the profiler on DEBUG_ADDR when set,
// sets the runtime's memory limit (defaultMemoryLimit, unless GOMEMLIMIT
// is set), starts the service and waits for it to shut down. The error is
// a bad configuration, a failed start, or why the service stopped.
func Run[C any, P configOf[C]](ctx context.Context, name string, environ []string, start StartFunc[C]) error {
	var cfg C
	if err := config.Load(P(&cfg), environ); err != nil {
		return err
	}
	common := P(&cfg).Shared()
	log := config.NewLogger(name, *common, os.Stderr)
	tracing.LogTo(log.Warn)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if err := pluginmgr.SetBufferPool(); err != nil {
		return err
	}
	if common.DebugAddr != "" {
		if err := server.ServeDebug(ctx, common.DebugAddr, log); err != nil {
			return fmt.Errorf("DEBUG_ADDR=%q: %w", common.DebugAddr, err)
		}
	}
	svc, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Wait()
}

// Base is what every service is built on: its open store, its metrics
// registry and its requests' Idempotency-Keys, under its name and shared
// configuration.
type Base struct {
	Name     string
	Store    *store.Store
	Registry *prometheus.Registry
	// Keys are the Idempotency-Keys of the service's intake, kept for
	// IDEMPOTENCY_TTL; Serve purges the expired ones.
	Keys *idempotency.Keys
	// Tracing is the service's tracer provider (OTEL_*); it exports
	// nothing unless an OTLP endpoint is configured.
	Tracing *tracing.Provider
	cfg     config.Common
	log     hclog.Logger
}

// Open opens the store cfg names (SQLite in DATA_DIR, or DATABASE_URL), a
// metrics registry and the tracer provider for the service name
// ("control-tower").
func Open(ctx context.Context, name string, cfg config.Common, log hclog.Logger) (*Base, error) {
	tp, err := tracing.Start(ctx, cfg.Tracing, name, cfg.Instance())
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, User: name}, log)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	if tp.Enabled() || cfg.Tracing.Endpoint != "" || cfg.Tracing.TracesEndpoint != "" {
		log.Info("tracing: spans " + cfg.Tracing.Describe())
	}
	return &Base{Name: name, Store: st, Registry: metrics.NewRegistry(), Keys: idempotency.New(st, cfg.IdempotencyTTL, log), Tracing: tp, cfg: cfg, log: log}, nil
}

// Abort closes the store of a service that will not start, and returns
// err, why.
func (b *Base) Abort(err error) error {
	b.Store.Close()
	_ = b.Tracing.Shutdown(context.Background())
	return err
}

// tracingFlushTimeout bounds exporting the last spans at shutdown.
const tracingFlushTimeout = 2 * time.Second

// Parts are a service's own parts, which Serve runs beside the shared
// ones.
type Parts struct {
	// Port is the HTTP port, on Common's SERVER_HOST; 0 picks a free one.
	Port int
	// Plugins is the service's plugin manager; Serve mounts its operator
	// API, samples its metrics and runs it.
	Plugins *pluginmgr.Manager
	// Routes mounts the service's own endpoints.
	Routes func(*mux.Router)
	// Gauges are sampled at each scrape of /metrics, after the plugin
	// manager's.
	Gauges []metrics.GaugeSource
	// Status is the service's summary on GET /status and the status page.
	Status statuspage.Summary
	// Charts are the status page's plots (GET /status/series), sampled
	// every Common's SeriesInterval.
	Charts []statuspage.Chart
	// OpenAPI is the service's OpenAPI document, served on
	// GET /openapi.json.
	OpenAPI []byte
	// Checks are the readiness checks (GET /readyz) beyond the store's.
	Checks []server.Check
	// Workers run beside the plugins until shutdown and are stopped with
	// them (the data-gateway's delivery).
	Workers []func(context.Context)
	// Backends run until the plugins have stopped, so that they take what
	// the plugins hand over until the end (the control-tower's relay and
	// publisher).
	Backends []func(context.Context)
	// LogFields are added to the "listening" log line.
	LogFields []any
}

// shutdownTimeout bounds the requests in flight once the service is
// asked to stop.
const shutdownTimeout = 10 * time.Second

// Serve starts the plugins, p's workers and backends, and serves HTTP
// until ctx is done. Shutdown then goes in order: stop taking requests
// (those in flight get 10s), stop the plugins and the workers, then the
// backends, then close the store. On a failure to listen the store is
// closed and the error returned.
func (b *Base) Serve(ctx context.Context, p Parts) (*Service, error) {
	b.Registry.MustRegister(metrics.NewSampled(b.log, append(p.Plugins.MetricSources(), p.Gauges...)...))
	router := server.NewRouter(b.cfg.Access(), b.Registry, b.log, b.Tracing.Middleware())
	p.Routes(router)
	p.Plugins.Routes(router)
	series := statuspage.NewSeries(p.Charts, b.cfg.SeriesInterval, b.log)
	statuspage.Routes(router, b.Name, p.Status, series)
	server.OpenAPIRoute(router, p.OpenAPI)
	srv, err := server.Listen(b.cfg.Addr(p.Port), router, server.Options{
		Checks:      append([]server.Check{{Name: "store", Check: b.Store.Ping}}, p.Checks...),
		Metrics:     b.Registry,
		TLSCertFile: b.cfg.TLSCertFile,
		TLSKeyFile:  b.cfg.TLSKeyFile,
	}, b.log)
	if err != nil {
		return nil, b.Abort(err)
	}

	s := &Service{server: srv, plugins: p.Plugins, operations: server.Operations(router), done: make(chan struct{})}
	pluginsCtx, stopPlugins := context.WithCancel(context.WithoutCancel(ctx))
	backendsCtx, stopBackends := context.WithCancel(context.WithoutCancel(ctx))
	var pluginsWG, backendsWG sync.WaitGroup
	for _, run := range p.Backends {
		backendsWG.Go(func() { run(backendsCtx) })
	}
	pluginsWG.Go(func() { _ = p.Plugins.Run(pluginsCtx) })
	for _, run := range append(p.Workers, series.Run, b.Keys.Run) {
		pluginsWG.Go(func() { run(pluginsCtx) })
	}
	go func() {
		defer close(s.done)
		s.err = srv.Serve(ctx, shutdownTimeout)
		stopPlugins()
		pluginsWG.Wait()
		stopBackends()
		backendsWG.Wait()
		s.err = errors.Join(s.err, b.Store.Close())
		flush, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		if err := b.Tracing.Shutdown(flush); err != nil {
			b.log.Warn("tracing: the last spans were not exported", "error", err)
		}
		cancel()
		b.log.Info(b.Name + " stopped")
	}()
	b.log.Info(b.Name+" listening", append([]any{"url", srv.URL(), "plugins", b.cfg.PluginsDir, "database", b.Store.Dialect()}, p.LogFields...)...)
	return s, nil
}

// Service is a running service.
type Service struct {
	server     *server.Server
	plugins    *pluginmgr.Manager
	operations []string
	done       chan struct{}
	err        error
}

// Addr is the address the HTTP server listens on (host:port).
func (s *Service) Addr() string { return s.server.Addr() }

// URL is the service's base URL (http or https).
func (s *Service) URL() string { return s.server.URL() }

// Operations lists what the service serves over HTTP as "<METHOD>
// <path template>" ("GET /triggers/{uuid}"), sorted.
func (s *Service) Operations() []string { return s.operations }

// Plugins is the service's plugin manager.
func (s *Service) Plugins() *pluginmgr.Manager { return s.plugins }

// Wait blocks until the service has shut down and returns why it stopped:
// nil after ctx ended and everything closed cleanly.
func (s *Service) Wait() error {
	<-s.done
	return s.err
}
