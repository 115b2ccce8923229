// Package datagateway assembles the data-gateway service: the store, the
// row spool's intake and delivery (host/spool) and the pusher plugins,
// behind one HTTP server.
package datagateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/internal/poll"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/service"
	"github.com/routinglayer/routing/host/spool"
	"github.com/routinglayer/routing/host/statuspage"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Config is the data-gateway's configuration, from the environment.
type Config struct {
	config.Common
	ServerPort        int           `env:"SERVER_PORT" envDefault:"8001"`
	ControlTowerURL   string        `env:"CONTROL_TOWER_URL"`
	ControlTowerToken string        `env:"CONTROL_TOWER_TOKEN"`
	VerifyTriggers    bool          `env:"VERIFY_TRIGGERS" envDefault:"false"`
	MaxRows           int           `env:"MAX_ROWS_PER_REQUEST" envDefault:"10000"`
	MaxBacklog        int           `env:"MAX_BACKLOG" envDefault:"100000"`
	MaxBacklogAge     time.Duration `env:"MAX_BACKLOG_AGE" envDefault:"5s"`
	MaxSpoolBytes     int64         `env:"MAX_SPOOL_BYTES" envDefault:"1073741824"`
	PushConcurrency   int           `env:"PUSH_CONCURRENCY" envDefault:"8"`
	PushTimeout       time.Duration `env:"PUSH_TIMEOUT" envDefault:"30s"`
	PushBatchRows     int           `env:"PUSH_BATCH_ROWS" envDefault:"1000"`
	MaxAttempts       int           `env:"MAX_ATTEMPTS" envDefault:"10"`
	RetryMin          time.Duration `env:"RETRY_MIN" envDefault:"1s"`
	RetryMax          time.Duration `env:"RETRY_MAX" envDefault:"5m"`
	// MaxPushBytes bounds one Push message to a pusher; 0, the default,
	// is the plugin protocol's limit (pluginhost.MaxMessageBytes). Not read from
	// a variable: tests lower it.
	MaxPushBytes int `env:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	checks := []struct {
		ok  bool
		msg string
	}{
		{c.ServerPort >= 0 && c.ServerPort <= 65535, fmt.Sprintf("SERVER_PORT=%d: want 0-65535", c.ServerPort)},
		{c.MaxRows >= 1, fmt.Sprintf("MAX_ROWS_PER_REQUEST=%d: want at least 1", c.MaxRows)},
		{c.MaxBacklog >= 1, fmt.Sprintf("MAX_BACKLOG=%d: want at least 1", c.MaxBacklog)},
		{c.MaxBacklogAge >= 0, fmt.Sprintf("MAX_BACKLOG_AGE=%s: want 0 (no bound) or a positive duration, e.g. 5s", c.MaxBacklogAge)},
		{c.MaxSpoolBytes >= c.MaxBodyBytes, fmt.Sprintf("MAX_SPOOL_BYTES=%d: want at least MAX_BODY_BYTES (%d), or a large request could never be taken", c.MaxSpoolBytes, c.MaxBodyBytes)},
		{c.PushConcurrency >= 1, fmt.Sprintf("PUSH_CONCURRENCY=%d: want at least 1", c.PushConcurrency)},
		{c.PushTimeout > 0, fmt.Sprintf("PUSH_TIMEOUT=%s: want a positive duration", c.PushTimeout)},
		{c.PushBatchRows >= 0, fmt.Sprintf("PUSH_BATCH_ROWS=%d: want 0 (one request per Push) or more", c.PushBatchRows)},
		{c.MaxAttempts >= 1, fmt.Sprintf("MAX_ATTEMPTS=%d: want at least 1", c.MaxAttempts)},
		{c.RetryMin > 0 && c.RetryMax >= c.RetryMin, fmt.Sprintf("RETRY_MIN=%s, RETRY_MAX=%s: want 0 < RETRY_MIN <= RETRY_MAX", c.RetryMin, c.RetryMax)},
		{!c.VerifyTriggers || c.ControlTowerURL != "", "VERIFY_TRIGGERS=true needs CONTROL_TOWER_URL"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return errors.New(ch.msg)
		}
	}
	if c.ControlTowerURL != "" {
		if u, err := url.Parse(c.ControlTowerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CONTROL_TOWER_URL=%q: want http(s)://host:port", c.ControlTowerURL)
		}
	}
	return nil
}

// Service is a running data-gateway.
type Service = service.Service

// Start opens the store, starts the pusher plugins and their delivery,
// and begins serving HTTP. The service runs until ctx is done; Wait
// returns once it has shut down: pushes in flight then are released, to
// be pushed again.
func Start(ctx context.Context, cfg Config, log hclog.Logger) (*Service, error) {
	b, err := service.Open(ctx, "data-gateway", cfg.Common, log)
	if err != nil {
		return nil, err
	}
	st := b.Store
	var plugins *pluginmgr.Manager
	gateway := metrics.NewGateway(b.Registry)
	sp := spool.New(spool.Config{
		Metrics:           gateway,
		MaxRows:           cfg.MaxRows,
		MaxBacklog:        cfg.MaxBacklog,
		MaxBacklogAge:     cfg.MaxBacklogAge,
		MaxSpoolBytes:     cfg.MaxSpoolBytes,
		MaxPushBytes:      cfg.MaxPushBytes,
		Concurrency:       cfg.PushConcurrency,
		PushTimeout:       cfg.PushTimeout,
		MaxBatchRows:      cfg.PushBatchRows,
		MaxAttempts:       cfg.MaxAttempts,
		RetryMin:          cfg.RetryMin,
		RetryMax:          cfg.RetryMax,
		ControlTowerURL:   cfg.ControlTowerURL,
		ControlTowerToken: cfg.ControlTowerToken,
		VerifyTriggers:    cfg.VerifyTriggers,
		Instance:          cfg.Instance(),
		Keys:              b.Keys,
		Tracer:            b.Tracing.Tracer("github.com/routinglayer/routing/host/spool"),
	}, st, func() []spool.Pusher { return installed(plugins) }, log)
	if err := errors.Join(sp.ReleaseStaleClaims(ctx), sp.LoadSpool(ctx)); err != nil {
		return nil, b.Abort(err)
	}
	plugins = pluginmgr.New(cfg.PluginManager(pluginhost.KindPusher), sp.Attach, log)

	return b.Serve(ctx, service.Parts{
		Port:    cfg.ServerPort,
		Plugins: plugins,
		Routes:  func(r *mux.Router) { sp.Routes(r, cfg.MaxBodyBytes) },
		Gauges: []metrics.GaugeSource{
			perPusher("backlog_tasks", "Tasks waiting for delivery, by pusher.", withPushers(st.Backlog, plugins)),
			perPusher("dead_letters", "Dead-lettered tasks, by pusher.", withPushers(st.DeadLetterCounts, plugins)),
			{
				Name: "backlog_age_seconds", Help: "How long each pusher's oldest due task has waited, as intake checks it against MAX_BACKLOG_AGE.", Labels: []string{"pusher"},
				Read: func(context.Context) ([]metrics.Gauge, error) {
					var out []metrics.Gauge
					for p, age := range sp.BacklogAge() {
						out = append(out, metrics.Gauge{Labels: []string{p}, Value: age.Seconds()})
					}
					return out, nil
				},
			},
			{
				Name: "spool_bytes", Help: "Bytes of stored rows waiting for delivery, as counted against MAX_SPOOL_BYTES.",
				Read: func(context.Context) ([]metrics.Gauge, error) {
					return []metrics.Gauge{{Value: float64(sp.SpoolBytes())}}, nil
				},
			},
		},
		Status: func(ctx context.Context) (any, error) {
			backlog, err := withPushers(st.Backlog, plugins)(ctx)
			if err != nil {
				return nil, err
			}
			dead, err := withPushers(st.DeadLetterCounts, plugins)(ctx)
			return struct {
				Backlog     map[string]int `json:"backlog"`
				DeadLetters map[string]int `json:"deadLetters"`
			}{backlog, dead}, err
		},
		Charts:  charts(gateway, st, plugins),
		OpenAPI: OpenAPI,
		Workers: []func(context.Context){
			sp.Run,
			func(ctx context.Context) { watchRemovals(ctx, plugins, sp, log) },
		},
		LogFields: []any{"control-tower", cfg.ControlTowerURL},
	})
}

// installed lists the installed pushers for intake: every one gets a task
// for each accepted request, whatever its state. A failed or stopped
// pusher is paused: its tasks wait until it runs again, and its backlog
// does not refuse requests (MAX_SPOOL_BYTES bounds what waits). A
// starting, running or restarting pusher is delivering, and its backlog
// counts against MAX_BACKLOG.
func installed(m *pluginmgr.Manager) []spool.Pusher {
	list := m.List()
	out := make([]spool.Pusher, len(list))
	for i, st := range list {
		out[i] = spool.Pusher{
			Name:   st.Name,
			State:  string(st.State),
			Paused: st.State == pluginmgr.StateFailed || st.State == pluginmgr.StateStopped,
		}
	}
	return out
}

// removalPoll is how often the plugin list is compared with the last one
// to notice removed pushers.
const removalPoll = 250 * time.Millisecond

// watchRemovals dead-letters the pending tasks of each pusher whose
// plugin file is removed (see spool.Spool.PusherRemoved). A pusher that leaves
// the list while its file is still there, refused by a scan (a checksum or
// permission problem, say), keeps its tasks: it is expected back. Tasks of
// pushers missing when the service starts are kept as well, so a wrong
// PLUGINS_DIR does not dead-letter the spool.
func watchRemovals(ctx context.Context, plugins *pluginmgr.Manager, sp *spool.Spool, log hclog.Logger) {
	known := map[string]bool{}
	poll.Every(ctx, removalPoll, func() bool {
		now := map[string]bool{}
		for _, st := range plugins.List() {
			now[st.Name] = true
		}
		var refused map[string]bool
		for name := range known {
			if now[name] {
				continue
			}
			if refused == nil {
				refused = map[string]bool{}
				for _, sk := range plugins.Skipped() {
					refused[strings.TrimPrefix(filepath.Base(sk.File), string(pluginhost.KindPusher)+"-")] = true
				}
			}
			if refused[name] {
				log.Warn("pusher file refused; its pending tasks are kept until it is accepted again", "pusher", name)
				continue
			}
			if _, err := sp.PusherRemoved(ctx, name); err != nil {
				if ctx.Err() == nil {
					log.Error("cannot dead-letter the tasks of a removed pusher; they stay pending", "pusher", name, "error", err)
				}
				now[name] = true // try again at the next poll
			}
		}
		known = now
		return true
	})
}

// withPushers completes counts per pusher with a zero for every installed
// pusher that has none.
func withPushers(read func(context.Context) (map[string]int, error), m *pluginmgr.Manager) func(context.Context) (map[string]int, error) {
	return func(ctx context.Context) (map[string]int, error) {
		counts, err := read(ctx)
		if err != nil {
			return nil, err
		}
		for _, st := range m.List() {
			if _, ok := counts[st.Name]; !ok {
				counts[st.Name] = 0
			}
		}
		return counts, nil
	}
}

// perPusher is a gauge family labelled by pusher, read from the store.
func perPusher(name, help string, read func(context.Context) (map[string]int, error)) metrics.GaugeSource {
	return metrics.GaugeSource{
		Name: name, Help: help, Labels: []string{"pusher"},
		Read: func(ctx context.Context) ([]metrics.Gauge, error) {
			counts, err := read(ctx)
			out := make([]metrics.Gauge, 0, len(counts))
			for p, n := range counts {
				out = append(out, metrics.Gauge{Labels: []string{p}, Value: float64(n)})
			}
			return out, err
		},
	}
}

// charts are the status page's plots: rows per second received and
// delivered to each pusher, and each pusher's backlog.
func charts(m *metrics.Gateway, st *store.Store, plugins *pluginmgr.Manager) []statuspage.Chart {
	return []statuspage.Chart{
		{
			ID: "rows", Title: "Rows per second", Unit: "rows/s", Rate: true, First: []string{"received"},
			Read: func(context.Context) (map[string]float64, error) {
				out := map[string]float64{"received": metrics.Totals(m.RowsReceived, "", nil)[""]}
				delivered := metrics.Totals(m.RowsDelivered, "pusher", nil)
				for _, p := range plugins.List() {
					out["delivered to "+p.Name] = delivered[p.Name]
				}
				return out, nil
			},
		},
		{
			ID: "backlog", Title: "Backlog per pusher", Unit: "tasks",
			Read: func(ctx context.Context) (map[string]float64, error) {
				counts, err := withPushers(st.Backlog, plugins)(ctx)
				out := make(map[string]float64, len(counts))
				for p, n := range counts {
					out[p] = float64(n)
				}
				return out, err
			},
		},
	}
}
