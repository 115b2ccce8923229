// Package gateway is the data-gateway's data path: it accepts data rows
// for a trigger, stores them with one task per pusher in one transaction
// before answering, and delivers each pusher's tasks through a worker pool
// of its own: rows of one uuid in the order they were accepted, different
// uuids in parallel, failures retried with backoff and finally
// dead-lettered. A slow or dead pusher delays only its own tasks.
package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/towerclient"
)

// Config holds the gateway's limits and delivery policy.
type Config struct {
	// MaxRows bounds the rows of one request.
	MaxRows int
	// MaxBacklog is how many pending tasks a pusher may have before intake
	// answers 429.
	MaxBacklog int
	// Concurrency is how many uuids one pusher receives in parallel.
	Concurrency int
	// PushTimeout bounds one Push call.
	PushTimeout time.Duration
	// MaxAttempts is how many failed attempts dead-letter a task.
	MaxAttempts int
	// RetryMin and RetryMax bound the delay between attempts.
	RetryMin, RetryMax time.Duration
	// ControlTowerURL, when set, is where triggers are resolved.
	ControlTowerURL string
	// ControlTowerToken is sent to the control-tower, if set.
	ControlTowerToken string
	// VerifyTriggers rejects rows for unknown uuids and out-of-plate
	// indexes (needs ControlTowerURL).
	VerifyTriggers bool
	// MaxBatchRows bounds the rows of one Push: tasks queued behind each
	// other for one uuid are pushed together up to this many rows (0: one
	// task per Push).
	MaxBatchRows int
	// Metrics receives the gateway's series.
	Metrics *metrics.Gateway
	// Instance names this gateway in task claims; it must stay the same
	// across restarts and differ between instances sharing a database
	// (the services use host name and data directory).
	Instance string
}

// Gateway accepts and delivers data rows.
type Gateway struct {
	cfg     Config
	store   *store.Store
	pushers func() []string
	log     hclog.Logger
	owner   string
	tower   *triggerCache

	mu     sync.Mutex
	kicks  map[string]chan struct{} // per pusher: new tasks may be due
	single map[string]bool          // pusher and uuid whose batch failed

	backlogMu sync.Mutex
	backlog   map[string]int
	backlogAt time.Time
}

// New returns a Gateway. pushers lists the pushers that receive new data
// (those installed and not stopped by an operator).
func New(cfg Config, st *store.Store, pushers func() []string, log hclog.Logger) *Gateway {
	g := &Gateway{
		cfg:     cfg,
		store:   st,
		pushers: pushers,
		log:     log.Named("gateway"),
		owner:   cfg.Instance,
		kicks:   make(map[string]chan struct{}),
		single:  make(map[string]bool),
	}
	if cfg.ControlTowerURL != "" {
		g.tower = newTriggerCache(towerclient.New(cfg.ControlTowerURL, cfg.ControlTowerToken))
	}
	return g
}

// ReleaseStaleClaims frees the claims this instance held when it last
// stopped (by a crash, say), so their tasks are delivered now rather than
// when their leases run out.
func (g *Gateway) ReleaseStaleClaims(ctx context.Context) error {
	n, err := g.store.ReleaseClaims(ctx, g.owner)
	if n > 0 {
		g.log.Info("released tasks claimed before the last stop", "count", n)
	}
	return err
}

// kickChan returns the wake-up channel of a pusher's worker pool.
func (g *Gateway) kickChan(pusher string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.kicks[pusher]
	if !ok {
		ch = make(chan struct{}, 1)
		g.kicks[pusher] = ch
	}
	return ch
}

func (g *Gateway) kick(pusher string) {
	select {
	case g.kickChan(pusher) <- struct{}{}:
	default:
	}
}

// backlogOf returns the pending tasks per pusher, refreshed at most once
// a second.
func (g *Gateway) backlogOf(ctx context.Context) (map[string]int, error) {
	g.backlogMu.Lock()
	defer g.backlogMu.Unlock()
	if g.backlog != nil && time.Since(g.backlogAt) < time.Second {
		return g.backlog, nil
	}
	b, err := g.store.Backlog(ctx)
	if err != nil {
		return nil, err
	}
	g.backlog, g.backlogAt = b, time.Now()
	return b, nil
}

// triggerCache resolves triggers from the control-tower: found triggers
// are kept (they do not change shape), unknown ones are asked again after
// a short while.
type triggerCache struct {
	client *towerclient.Client
	mu     sync.Mutex
	found  map[string]*sdk.StoredTrigger
	miss   map[string]time.Time
}

const (
	cacheSize   = 10000
	missRetryIn = 10 * time.Second
)

func newTriggerCache(c *towerclient.Client) *triggerCache {
	return &triggerCache{client: c, found: map[string]*sdk.StoredTrigger{}, miss: map[string]time.Time{}}
}

// resolve returns the trigger, nil when the control-tower does not know
// it, or an error when it cannot be asked.
func (c *triggerCache) resolve(ctx context.Context, uuid string) (*sdk.StoredTrigger, error) {
	c.mu.Lock()
	if t, ok := c.found[uuid]; ok {
		c.mu.Unlock()
		return t, nil
	}
	if at, ok := c.miss[uuid]; ok && time.Since(at) < missRetryIn {
		c.mu.Unlock()
		return nil, nil
	}
	c.mu.Unlock()

	t, err := c.client.Trigger(ctx, uuid)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		if len(c.found) >= cacheSize {
			clear(c.found)
		}
		c.found[uuid] = t
		return t, nil
	case isNotFound(err):
		if len(c.miss) >= cacheSize {
			clear(c.miss)
		}
		c.miss[uuid] = time.Now()
		return nil, nil
	default:
		return nil, err
	}
}
