// Package controltower assembles the control-tower service: the store,
// the trigger intake and API (host/triggerintake), the watcher plugins, the
// outbox relay and the RabbitMQ publisher, behind one HTTP server.
package controltower

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/publisher"
	"github.com/routinglayer/routing/host/relay"
	"github.com/routinglayer/routing/host/server"
	"github.com/routinglayer/routing/host/service"
	"github.com/routinglayer/routing/host/statuspage"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/triggerintake"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Config is the control-tower's configuration, from the environment.
type Config struct {
	config.Common
	ServerPort   int    `env:"SERVER_PORT" envDefault:"8000"`
	AMQPURL      string `env:"AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	AMQPExchange string `env:"AMQP_EXCHANGE" envDefault:"triggers"`
	// WatcherLeaseTTL is how long a watcher's lease lasts unless renewed,
	// with PostgreSQL: a killed holder's watchers are taken over after
	// it expires.
	WatcherLeaseTTL time.Duration `env:"WATCHER_LEASE_TTL" envDefault:"10s"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.ServerPort < 0 || c.ServerPort > 65535 {
		return fmt.Errorf("SERVER_PORT=%d: want 0-65535", c.ServerPort)
	}
	if err := c.validateAMQPURLs(); err != nil {
		return err
	}
	if c.AMQPExchange == "" {
		return errors.New("AMQP_EXCHANGE: must not be empty")
	}
	if c.WatcherLeaseTTL < time.Second {
		return fmt.Errorf("WATCHER_LEASE_TTL=%s: want at least 1s", c.WatcherLeaseTTL)
	}
	return nil
}

// Service is a running control-tower.
type Service = service.Service

// Start opens the store, starts the publisher, the relay and the watcher
// plugins, and begins serving HTTP. The service runs until ctx is done;
// Wait returns once it has shut down. The relay and the publisher stop
// after the watchers, so what a watcher emitted until it stopped is in
// the outbox; the publisher lets go of the broker within its CloseTimeout
// (5s) even when the broker blocks the connection, and triggers not
// confirmed by then stay in the outbox.
func Start(ctx context.Context, cfg Config, log hclog.Logger) (*Service, error) {
	instance := cfg.Instance()
	log = log.With("instance", instance)
	b, err := service.Open(ctx, serviceName, cfg.Common, log)
	if err != nil {
		return nil, err
	}
	st := b.Store
	tower := metrics.NewTower(b.Registry)
	nodes := cfg.AMQPURLs()
	pub := publisher.New(publisher.Config{URLs: nodes, Exchange: cfg.AMQPExchange}, log)
	rel := relay.New(relay.Config{Owner: instance, Tracer: b.Tracing.Tracer("github.com/routinglayer/routing/host/relay")}, st, pub, tower, log)
	beat := &heartbeat{store: st, id: instance, started: time.Now(), log: log}
	if err := errors.Join(rel.ReleaseStaleClaims(ctx), beat.start(ctx)); err != nil {
		return nil, b.Abort(err)
	}
	intake := triggerintake.New(st, rel.Kick, tower, b.Tracing.Tracer("github.com/routinglayer/routing/host/triggerintake"), log)
	pluginsCfg := cfg.PluginManager(pluginhost.KindWatcher)
	if cfg.DatabaseURL != "" {
		// Control-towers sharing the database run each watcher once.
		pluginsCfg.Leases, pluginsCfg.LeaseTTL = watcherLeases{st: st, instance: instance}, cfg.WatcherLeaseTTL
	}
	plugins := pluginmgr.New(pluginsCfg, func(ctx context.Context, p *pluginmgr.Plugin) error {
		w, ok := p.Client.(pluginhost.WatcherClient)
		if !ok {
			return fmt.Errorf("plugin %s is not a watcher", p.Name)
		}
		return w.Run(ctx, intake.Sink(p.Name), st.PluginState(p.Name))
	}, log)

	return b.Serve(ctx, service.Parts{
		Port:    cfg.ServerPort,
		Plugins: plugins,
		Routes:  triggerintake.NewAPI(intake, cfg.MaxBodyBytes, b.Keys).Routes,
		Gauges: []metrics.GaugeSource{
			{
				Name: "triggers_pending", Help: "Stored triggers not yet confirmed by the broker.",
				Read: func(ctx context.Context) ([]metrics.Gauge, error) {
					n, err := st.PendingCount(ctx)
					return []metrics.Gauge{{Value: float64(n)}}, err
				},
			},
			{
				Name: "broker_connected", Help: "1 while connected to RabbitMQ.",
				Read: func(context.Context) ([]metrics.Gauge, error) {
					return []metrics.Gauge{{Value: metrics.Bool(pub.Connected())}}, nil
				},
			},
			{
				Name: "broker_blocked", Help: "1 while RabbitMQ blocks the connection (a memory or disk alarm): nothing is published.",
				Read: func(context.Context) ([]metrics.Gauge, error) {
					_, blocked := pub.Blocked()
					return []metrics.Gauge{{Value: metrics.Bool(pub.Connected() && blocked)}}, nil
				},
			},
		},
		Status: func(ctx context.Context) (any, error) {
			n, err := st.PendingCount(ctx)
			reason, blocked := pub.Blocked()
			connected := pub.Connected()
			blocked = blocked && connected
			if !blocked {
				reason = ""
			}
			if err != nil {
				return nil, err
			}
			live, err := liveInstances(ctx, st)
			return struct {
				PendingTriggers int  `json:"pendingTriggers"`
				BrokerConnected bool `json:"brokerConnected"`
				// BrokerBlocked: connected, but the broker blocks the
				// connection for BrokerBlockedReason (e.g. "low on memory").
				BrokerBlocked       bool   `json:"brokerBlocked"`
				BrokerBlockedReason string `json:"brokerBlockedReason,omitempty"`
				// Broker is the node in use, password redacted.
				Broker string `json:"broker,omitempty"`
				// Instance is this instance; Instances the live ones sharing
				// its database, this one included.
				Instance  string           `json:"instance"`
				Instances []instanceStatus `json:"instances"`
			}{n, connected, blocked, reason, pub.Node(), instance, live}, err
		},
		Charts:  charts(tower, st),
		OpenAPI: OpenAPI,
		Checks: []server.Check{{Name: "broker", Check: func(context.Context) error {
			if !pub.Connected() {
				return errors.New("not connected to " + publisher.RedactNodes(nodes))
			}
			if reason, blocked := pub.Blocked(); blocked {
				return errors.New("broker blocked: " + reason)
			}
			return nil
		}}},
		Backends: []func(context.Context){
			func(ctx context.Context) { _ = pub.Run(ctx) },
			func(ctx context.Context) { _ = rel.Run(ctx) },
			beat.run,
		},
		LogFields: []any{"broker", publisher.RedactNodes(nodes), "exchange", cfg.AMQPExchange},
	})
}

// charts are the status page's plots: triggers per second stored and
// confirmed by the broker, and the publish backlog.
func charts(m *metrics.Tower, st *store.Store) []statuspage.Chart {
	return []statuspage.Chart{
		{
			ID: "triggers", Title: "Triggers per second", Unit: "triggers/s", Rate: true, First: []string{"received", "published"},
			Read: func(context.Context) (map[string]float64, error) {
				received := metrics.Totals(m.TriggersReceived, "", func(l map[string]string) bool { return l["result"] == "created" })
				published := metrics.Totals(m.TriggersPublished, "", func(l map[string]string) bool { return l["outcome"] != "failed" })
				return map[string]float64{"received": received[""], "published": published[""]}, nil
			},
		},
		{
			ID: "backlog", Title: "Publish backlog", Unit: "triggers",
			Read: func(ctx context.Context) (map[string]float64, error) {
				n, err := st.PendingCount(ctx)
				return map[string]float64{"pending": float64(n)}, err
			},
		},
	}
}
