// Package spool is the data-gateway's row spool, its data path: it
// accepts data rows for a trigger (POST /data), stores them with one task
// per pusher in one transaction before answering, and delivers each pusher's tasks through a worker pool
// of its own: rows of one uuid in the order they were accepted, different
// uuids in parallel, failures retried with backoff and finally
// dead-lettered. A slow or dead pusher delays only its own tasks. It also
// serves each delivery's status and the dead letters. The service that
// assembles it with the store and the plugins is host/datagateway.
package spool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/host/idempotency"
	"github.com/routinglayer/routing/host/internal/poll"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
	"github.com/routinglayer/routing/sdk/towerclient"
)

// Config holds the spool's limits and delivery policy.
type Config struct {
	// MaxRows bounds the rows of one request.
	MaxRows int
	// MaxBacklog is how many pending tasks a delivering pusher may have
	// before intake answers 429; a paused pusher's backlog does not count.
	MaxBacklog int
	// MaxBacklogAge bounds how long a delivering pusher's oldest due task
	// may have waited before intake holds requests (up to a second, for
	// delivery to catch up) and then answers 429 (0: no bound), so that
	// when delivery cannot keep up with intake, intake slows down to it
	// and the delivery lag stays bounded.
	MaxBacklogAge time.Duration
	// MaxSpoolBytes bounds the bytes of stored rows waiting for delivery
	// (each request's rows once, however many pushers it waits for);
	// intake answers 507 to a request that would pass it.
	MaxSpoolBytes int64
	// MaxPushBytes bounds one Push message; 0 means pluginhost.MaxMessageBytes,
	// the plugin protocol's limit.
	MaxPushBytes int
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
	// Metrics receives the spool's series.
	Metrics *metrics.Gateway
	// Keys holds the requests' Idempotency-Keys; nil ignores the header.
	Keys *idempotency.Keys
	// Instance names this spool in task claims; it must stay the same
	// across restarts and differ between instances sharing a database
	// (the services use host name and data directory).
	Instance string
	// Tracer records the spool's spans (the store write of a request,
	// each delivery and Push); nil records none.
	Tracer trace.Tracer
}

// Pusher is an installed pusher as intake sees it.
type Pusher struct {
	Name string
	// State is its supervisor's state (running, backoff, failed, ...).
	State string
	// Paused is set while it cannot deliver until an operator acts
	// (failed, or stopped): it still gets a task for every request, kept
	// until it runs again, but its backlog does not refuse requests.
	Paused bool
}

// Spool accepts and delivers data rows.
type Spool struct {
	cfg     Config
	store   *store.Store
	pushers func() []Pusher
	log     hclog.Logger
	owner   string
	tower   *triggerCache
	ledger  *ledger

	mu     sync.Mutex
	kicks  map[string]chan struct{} // per pusher: new tasks may be due
	single map[string]bool          // pusher and uuid whose batch failed
}

// New returns a Spool. pushers lists the installed pushers: each gets a
// task for every accepted request. Call LoadSpool before serving.
func New(cfg Config, st *store.Store, pushers func() []Pusher, log hclog.Logger) *Spool {
	if cfg.MaxPushBytes <= 0 {
		cfg.MaxPushBytes = pluginhost.MaxMessageBytes
	}
	cfg.Tracer = tracing.Tracer(cfg.Tracer)
	sp := &Spool{
		cfg:     cfg,
		store:   st,
		pushers: pushers,
		log:     log.Named("gateway"),
		owner:   cfg.Instance,
		ledger:  newLedger(cfg.MaxBacklog, cfg.MaxSpoolBytes, cfg.MaxBacklogAge),
		kicks:   make(map[string]chan struct{}),
		single:  make(map[string]bool),
	}
	if cfg.ControlTowerURL != "" {
		sp.tower = newTriggerCache(towerclient.New(cfg.ControlTowerURL, cfg.ControlTowerToken))
	}
	return sp
}

// ReleaseStaleClaims frees the claims this instance held when it last
// stopped (by a crash, say), so their tasks are delivered now rather than
// when their leases run out.
func (sp *Spool) ReleaseStaleClaims(ctx context.Context) error {
	n, err := sp.store.ReleaseClaims(ctx, sp.owner)
	if n > 0 {
		sp.log.Info("released tasks claimed before the last stop", "count", n)
	}
	return err
}

// LoadSpool reads the spool's usage (pending tasks per pusher, bytes of
// rows waiting) that intake's limits are checked against.
func (sp *Spool) LoadSpool(ctx context.Context) error {
	return sp.ledger.sync(ctx, sp.store.Usage)
}

// syncEvery is how often the spool's usage is read again when other
// instances may share it.
const syncEvery = time.Second

// Run keeps intake's figures of the spool current until ctx is done. With
// PostgreSQL, where other instances may add and deliver tasks, they are
// read from the store every second; with SQLite this instance is the
// only writer and its own bookkeeping is exact. With MaxBacklogAge, how
// long each pusher's oldest due task has waited is read every agePoll.
func (sp *Spool) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if sp.cfg.MaxBacklogAge > 0 {
		wg.Go(func() { sp.watchAges(ctx) })
	}
	if sp.store.Dialect() != "postgres" {
		return
	}
	failing := false
	poll.Every(ctx, syncEvery, func() bool {
		err := sp.ledger.sync(ctx, sp.store.Usage)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			sp.log.Warn("cannot read the spool's usage; intake checks the last figures", "error", err)
		case err == nil && failing:
			sp.log.Info("spool usage readable again")
		}
		failing = err != nil
		return true
	})
}

// agePoll is how often the pushers' oldest due tasks are read when
// MaxBacklogAge is set (an indexed lookup per pusher).
const agePoll = 25 * time.Millisecond

// watchAges reads each installed pusher's oldest due task every agePoll
// for intake's MaxBacklogAge check.
func (sp *Spool) watchAges(ctx context.Context) {
	failing := false
	poll.Every(ctx, agePoll, func() bool {
		var names []string
		for _, p := range sp.pushers() {
			names = append(names, p.Name)
		}
		oldest, err := sp.store.OldestDue(ctx, names)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			sp.log.Warn("cannot read the pushers' oldest due tasks; intake checks the last figures", "error", err)
		case err == nil:
			if failing {
				sp.log.Info("oldest due tasks readable again")
			}
			sp.ledger.setOldest(oldest)
		}
		failing = err != nil
		return true
	})
}

// BacklogAge is how long each pusher's oldest due task has waited, as
// intake last read it (only with MaxBacklogAge).
func (sp *Spool) BacklogAge() map[string]time.Duration {
	sp.ledger.mu.Lock()
	defer sp.ledger.mu.Unlock()
	now := time.Now()
	out := make(map[string]time.Duration, len(sp.ledger.oldest))
	for p := range sp.ledger.oldest {
		out[p] = sp.ledger.age(p, now)
	}
	return out
}

// SpoolBytes is the bytes of stored rows waiting for delivery, as intake
// counts them against MaxSpoolBytes.
func (sp *Spool) SpoolBytes() int64 {
	_, b := sp.ledger.usage()
	return b
}

// PusherRemoved dead-letters the pending tasks of a pusher whose plugin
// file is gone, so they neither wait for a pusher that may never return
// nor hold spool space; the dead letters name the removal and can be
// retried once it is installed again. It returns how many it
// dead-lettered.
func (sp *Spool) PusherRemoved(ctx context.Context, pusher string) (int, error) {
	reason := fmt.Sprintf("pusher %s was removed (its plugin file pusher-%s left the plugins directory); retry this dead letter once it is installed again", pusher, pusher)
	n, freed, err := sp.store.DeadLetterPending(ctx, pusher, reason)
	if err != nil {
		return 0, err
	}
	sp.ledger.settled(pusher, n, freed)
	if n > 0 {
		sp.log.Warn("pusher removed; its pending tasks are dead-lettered", "pusher", pusher, "tasks", n, "bytes", freed)
	}
	return n, nil
}

// kickChan returns the wake-up channel of a pusher's worker pool.
func (sp *Spool) kickChan(pusher string) chan struct{} {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ch, ok := sp.kicks[pusher]
	if !ok {
		ch = make(chan struct{}, 1)
		sp.kicks[pusher] = ch
	}
	return ch
}

func (sp *Spool) kick(pusher string) {
	select {
	case sp.kickChan(pusher) <- struct{}{}:
	default:
	}
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
