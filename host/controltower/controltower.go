// Package controltower assembles the control-tower service: the store,
// the trigger intake and API (host/triggerintake), the watcher plugins, the
// outbox relay and the RabbitMQ publisher, behind one HTTP server.
package controltower

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/publisher"
	"github.com/routinglayer/routing/host/relay"
	"github.com/routinglayer/routing/host/server"
	"github.com/routinglayer/routing/host/statuspage"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/triggerintake"
	"github.com/routinglayer/routing/sdk"
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
	// Environ is the environment plugins' variables come from; set by
	// the caller, not read from a variable.
	Environ []string `env:"-"`
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
type Service struct {
	store   *store.Store
	server  *server.Server
	plugins *pluginmgr.Manager
	log     hclog.Logger
	done    chan struct{}
	err     error
}

// Start opens the store, starts the publisher, the relay and the watcher
// plugins, and begins serving HTTP. The service runs until ctx is done;
// Wait returns once it has shut down.
func Start(ctx context.Context, cfg Config, log hclog.Logger) (*Service, error) {
	instance := cfg.Instance()
	log = log.With("instance", instance)
	st, err := store.Open(ctx, store.Config{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL}, log)
	if err != nil {
		return nil, err
	}
	reg := metrics.NewRegistry()
	tower := metrics.NewTower(reg)
	nodes := cfg.AMQPURLs()
	pub := publisher.New(publisher.Config{URLs: nodes, Exchange: cfg.AMQPExchange}, log)
	rel := relay.New(relay.Config{Owner: instance}, st, pub, tower, log)
	beat := &heartbeat{store: st, id: instance, started: time.Now(), log: log}
	if err := errors.Join(rel.ReleaseStaleClaims(ctx), beat.start(ctx)); err != nil {
		st.Close()
		return nil, err
	}
	intake := triggerintake.New(st, rel.Kick, tower, log)
	pluginsCfg := cfg.PluginManager(sdk.KindWatcher, cfg.Environ)
	if cfg.DatabaseURL != "" {
		// Control-towers sharing the database run each watcher once.
		pluginsCfg.Leases, pluginsCfg.LeaseTTL = watcherLeases{st: st, instance: cfg.Instance()}, cfg.WatcherLeaseTTL
	}
	plugins := pluginmgr.New(pluginsCfg, func(ctx context.Context, p *pluginmgr.Plugin) error {
		w, ok := p.Client.(sdk.WatcherClient)
		if !ok {
			return fmt.Errorf("plugin %s is not a watcher", p.Name)
		}
		return w.Run(ctx, intake.Sink(p.Name), st.PluginState(p.Name))
	}, log)

	reg.MustRegister(metrics.NewSampled(log, append(plugins.MetricSources(),
		metrics.GaugeSource{
			Name: "triggers_pending", Help: "Stored triggers not yet confirmed by the broker.",
			Read: func(ctx context.Context) ([]metrics.Gauge, error) {
				n, err := st.PendingCount(ctx)
				return []metrics.Gauge{{Value: float64(n)}}, err
			},
		},
		metrics.GaugeSource{
			Name: "broker_connected", Help: "1 while connected to RabbitMQ.",
			Read: func(context.Context) ([]metrics.Gauge, error) {
				return []metrics.Gauge{{Value: metrics.Bool(pub.Connected())}}, nil
			},
		},
		metrics.GaugeSource{
			Name: "broker_blocked", Help: "1 while RabbitMQ blocks the connection (a memory or disk alarm): nothing is published.",
			Read: func(context.Context) ([]metrics.Gauge, error) {
				_, blocked := pub.Blocked()
				return []metrics.Gauge{{Value: metrics.Bool(pub.Connected() && blocked)}}, nil
			},
		})...))

	router := server.NewRouter(cfg.Access(), reg, log)
	triggerintake.NewAPI(intake, cfg.MaxBodyBytes).Routes(router)
	plugins.Routes(router)
	statuspage.Routes(router, "control-tower", func(ctx context.Context) (any, error) {
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
	})
	srv, err := server.Listen(cfg.Addr(cfg.ServerPort), router, server.Options{
		Checks: []server.Check{
			{Name: "store", Check: st.Ping},
			{Name: "broker", Check: func(context.Context) error {
				if !pub.Connected() {
					return errors.New("not connected to " + redactNodes(nodes))
				}
				if reason, blocked := pub.Blocked(); blocked {
					return errors.New("broker blocked: " + reason)
				}
				return nil
			}},
		},
		Metrics:     reg,
		TLSCertFile: cfg.TLSCertFile,
		TLSKeyFile:  cfg.TLSKeyFile,
	}, log)
	if err != nil {
		st.Close()
		return nil, err
	}

	s := &Service{store: st, server: srv, plugins: plugins, log: log, done: make(chan struct{})}
	// Shutdown order: stop taking requests, stop the plugins, then the
	// relay and the publisher, then close the store. The publisher lets
	// go of the broker within its CloseTimeout (5s) even when the broker
	// blocks the connection; triggers not confirmed by then stay in the
	// outbox.
	pluginsCtx, stopPlugins := context.WithCancel(context.WithoutCancel(ctx))
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	var relayWG, pluginsWG sync.WaitGroup
	relayWG.Go(func() { _ = pub.Run(relayCtx) })
	relayWG.Go(func() { _ = rel.Run(relayCtx) })
	relayWG.Go(func() { beat.run(relayCtx) })
	pluginsWG.Go(func() { _ = plugins.Run(pluginsCtx) })
	go func() {
		defer close(s.done)
		s.err = srv.Serve(ctx, 10*time.Second)
		stopPlugins()
		pluginsWG.Wait()
		stopRelay()
		relayWG.Wait()
		s.err = errors.Join(s.err, st.Close())
		log.Info("control-tower stopped")
	}()
	log.Info("control-tower listening", "url", srv.URL(), "plugins", cfg.PluginsDir, "database", st.Dialect(),
		"broker", redactNodes(nodes), "exchange", cfg.AMQPExchange)
	return s, nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() string { return s.server.Addr() }

// URL is the service's base URL (http or https).
func (s *Service) URL() string { return s.server.URL() }

// Plugins is the service's plugin manager.
func (s *Service) Plugins() *pluginmgr.Manager { return s.plugins }

// Wait blocks until the service has shut down and returns why it stopped.
func (s *Service) Wait() error {
	<-s.done
	return s.err
}
