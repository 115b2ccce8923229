// Package relay moves stored triggers from the store's outbox to the
// broker: it publishes pending entries in batches with confirms and
// records each outcome (published, unroutable, or retried later). Entries
// leave the outbox only after the broker confirmed them, so a crash of the
// service or the broker loses nothing; at worst a trigger is published
// twice, and consumers de-duplicate on its message id.
//
// While the broker blocks the connection (a resource alarm) the relay
// publishes nothing: entries wait in the outbox, without counting as
// attempts, until the broker unblocks it.
package relay

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/publisher"
	"github.com/routinglayer/routing/host/store"
)

// recordTimeout bounds recording one round's outcomes in the store, which
// goes on after the context ends so that confirmed entries leave the
// outbox.
const recordTimeout = 5 * time.Second

// Config tunes a Relay.
type Config struct {
	// Batch is how many entries one round publishes; default 500.
	Batch int
	// Poll is how often the outbox is checked without a Kick; default 1s.
	Poll time.Duration
	// RetryMin and RetryMax bound the delay before a failed entry is tried
	// again; defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
}

// Relay publishes the outbox.
type Relay struct {
	cfg     Config
	store   *store.Store
	pub     *publisher.Publisher
	metrics *metrics.Tower
	log     hclog.Logger
	kick    chan struct{}
}

// New returns a Relay that records its outcomes in m.
func New(cfg Config, st *store.Store, pub *publisher.Publisher, m *metrics.Tower, log hclog.Logger) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(time.Minute, cfg.RetryMin)
	}
	return &Relay{cfg: cfg, store: st, pub: pub, metrics: m, log: log.Named("relay"), kick: make(chan struct{}, 1)}
}

// Kick tells the relay that new entries are waiting. It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is done.
func (r *Relay) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := r.round(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("publishing round failed; will retry", "error", err)
		}
		if n == r.cfg.Batch && err == nil {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-time.After(r.cfg.Poll):
		}
	}
	return nil
}

// round publishes one batch and reports how many entries it handled.
// When ctx ends mid-round, the outcomes known by then are still recorded,
// within recordTimeout; entries not confirmed stay in the outbox as they
// were.
func (r *Relay) round(ctx context.Context) (int, error) {
	if !r.pub.Connected() {
		return 0, nil
	}
	if _, blocked := r.pub.Blocked(); blocked {
		return 0, nil
	}
	entries, err := r.store.PendingOutbox(ctx, r.cfg.Batch)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	msgs := make([]publisher.Message, len(entries))
	for i, e := range entries {
		msgs[i] = publisher.Message{
			ID:         e.Trigger.UUID,
			APIVersion: e.Trigger.APIVersion,
			Protocol:   e.Trigger.Protocol,
			Source:     e.Trigger.Source,
			Body:       e.Trigger.Body,
			Timestamp:  e.Trigger.CreatedAt,
		}
	}
	results, err := r.pub.Publish(ctx, msgs)
	if errors.Is(err, publisher.ErrNotConnected) || errors.Is(err, publisher.ErrBlocked) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	stopping := ctx.Err() != nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var published, unroutable []int64
	counted := make([]bool, len(results))
	for i, res := range results {
		e := entries[i]
		switch res.Outcome {
		case publisher.Published:
			published = append(published, e.ID)
		case publisher.Unroutable:
			unroutable = append(unroutable, e.ID)
			r.log.Warn("trigger unroutable: no queue is bound for its routing key", "uuid", e.Trigger.UUID,
				"routingKey", publisher.RoutingKey(e.Trigger.APIVersion))
		default:
			if stopping || errors.Is(res.Err, publisher.ErrBlocked) {
				// Not an attempt that failed: the entry waits as it is.
				continue
			}
			msg := "not confirmed"
			if res.Err != nil {
				msg = res.Err.Error()
			}
			if err := r.store.RetryLater(rctx, e.ID, r.retryDelay(e.Attempts), msg); err != nil {
				r.log.Warn("could not postpone entry", "uuid", e.Trigger.UUID, "error", err)
			}
		}
		counted[i] = true
	}
	now := time.Now()
	if err := r.store.Settle(rctx, published, unroutable, now); err != nil {
		// The entries stay pending and are published again: consumers
		// de-duplicate on the message id.
		return 0, err
	}
	for i, res := range results {
		if !counted[i] {
			continue
		}
		if res.Outcome == publisher.Published {
			r.metrics.PublishLatency.Observe(now.Sub(entries[i].Trigger.CreatedAt).Seconds())
		}
		r.metrics.TriggersPublished.WithLabelValues(res.Outcome.String()).Inc()
	}
	return len(entries), nil
}

func (r *Relay) retryDelay(attempts int) time.Duration {
	d := r.cfg.RetryMin
	for i := 0; i < attempts && d < r.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, r.cfg.RetryMax)
}
