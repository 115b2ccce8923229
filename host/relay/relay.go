// Package relay moves stored triggers from the store's outbox to the
// broker: it claims pending entries in batches, publishes them with
// confirms and records each outcome (published, unroutable, or retried
// later). Entries leave the outbox only after the broker confirmed them,
// so a crash of the service or the broker loses nothing.
//
// Several instances on one database publish the outbox together: each
// claims the entries it publishes (store.ClaimOutbox) under a lease, so a
// trigger is published by one instance, and a dead instance's claims are
// taken over once their lease ends. A trigger is published twice only when
// its publisher confirmed it but the instance died, or could not record
// it, before settling it: at most one batch, the in-flight window; such
// takeovers are counted (routing_outbox_reclaimed_total) and consumers
// de-duplicate on the message id.
//
// While the broker blocks the connection (a resource alarm) the relay
// publishes nothing: entries wait in the outbox, without counting as
// attempts, until the broker unblocks it.
package relay

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/host/internal/defaults"
	"github.com/routinglayer/routing/host/internal/retry"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/publisher"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
)

// recordTimeout bounds recording one round's outcomes in the store, which
// goes on after the context ends so that confirmed entries leave the
// outbox.
const recordTimeout = 5 * time.Second

// Config tunes a Relay.
type Config struct {
	// Owner names this instance as the owner of its outbox claims (see
	// config.Common.Instance); default "relay".
	Owner string
	// Lease is how long a claim of outbox entries lasts; default 1m. A
	// round publishes for at most PublishTimeout and records its outcomes
	// within 5s, so a live instance settles or releases its claims well
	// before another instance may take them over.
	Lease time.Duration
	// PublishTimeout bounds publishing one round, confirms included:
	// entries not confirmed by then count as failed attempts and are
	// retried later. Default Lease/2.
	PublishTimeout time.Duration
	// Batch is how many entries one round publishes; default 500.
	Batch int
	// Poll is how often the outbox is checked without a Kick; default 1s.
	Poll time.Duration
	// RetryMin and RetryMax bound the delay before a failed entry is tried
	// again; defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
	// Tracer records a publish span per trigger, a child of the trace the
	// trigger was stored with; nil records none (the trigger's stored
	// trace context is still sent on).
	Tracer trace.Tracer
}

// DefaultConfig holds the relay's defaults: New gives each unset field of
// a Config its value here (see defaults.Fill), PublishTimeout at most half
// the Lease (half when unset), and RetryMax at least RetryMin.
func DefaultConfig() Config {
	return Config{Owner: "relay", Lease: time.Minute, Batch: 500, Poll: time.Second, RetryMin: time.Second, RetryMax: time.Minute}
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
	d := DefaultConfig()
	defaults.Fill(&cfg, d)
	if cfg.PublishTimeout <= 0 || cfg.PublishTimeout > cfg.Lease/2 {
		cfg.PublishTimeout = cfg.Lease / 2
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(d.RetryMax, cfg.RetryMin)
	}
	cfg.Tracer = tracing.Tracer(cfg.Tracer)
	return &Relay{cfg: cfg, store: st, pub: pub, metrics: m, log: log.Named("relay"), kick: make(chan struct{}, 1)}
}

// Kick tells the relay that new entries are waiting. It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// ReleaseStaleClaims frees the outbox claims this instance held when it
// last stopped: they will never be settled, and waiting for their lease
// would delay those triggers. Call it before Run.
func (r *Relay) ReleaseStaleClaims(ctx context.Context) error {
	n, err := r.store.ReleaseOutboxClaims(ctx, r.cfg.Owner)
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Info("released outbox claims held before the last stop", "entries", n, "owner", r.cfg.Owner)
	}
	return nil
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

// round claims one batch, publishes it and reports how many entries it
// handled. When ctx ends mid-round, the outcomes known by then are still
// recorded, within recordTimeout; the claims of entries not confirmed are
// given back as they were.
func (r *Relay) round(ctx context.Context) (int, error) {
	if !r.pub.Connected() {
		return 0, nil
	}
	if _, blocked := r.pub.Blocked(); blocked {
		return 0, nil
	}
	entries, err := r.store.ClaimOutbox(ctx, r.cfg.Owner, r.cfg.Batch, r.cfg.Lease)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	r.countReclaimed(entries)
	msgs := make([]publisher.Message, len(entries))
	spans := make([]trace.Span, len(entries))
	for i, e := range entries {
		msgs[i] = publisher.Message{
			ID:         e.Trigger.UUID,
			APIVersion: e.Trigger.APIVersion,
			Protocol:   e.Trigger.Protocol,
			Source:     e.Trigger.Source,
			Body:       e.Trigger.Body,
			Timestamp:  e.Trigger.CreatedAt,
		}
		var sctx context.Context
		sctx, spans[i] = r.startPublish(ctx, e)
		msgs[i].TraceParent, msgs[i].TraceState = sdk.TraceContext(sctx)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	results, err := r.pub.Publish(pctx, msgs)
	cancel()
	for i, s := range spans {
		switch {
		case err != nil:
			s.SetStatus(codes.Error, err.Error())
		case results[i].Outcome == publisher.Failed:
			msg := "not confirmed"
			if results[i].Err != nil {
				msg = results[i].Err.Error()
			}
			s.SetStatus(codes.Error, msg)
		}
		if err == nil {
			s.SetAttributes(attribute.String("routing.outcome", results[i].Outcome.String()))
		}
		s.End()
	}
	stopping := ctx.Err() != nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err != nil {
		// Nothing was sent: the claims go back untouched.
		released := make([]store.OutboxRelease, len(entries))
		for i, e := range entries {
			released[i] = store.OutboxRelease{ID: e.ID}
		}
		if rerr := r.store.ReleaseOutbox(rctx, r.cfg.Owner, released); rerr != nil {
			r.log.Warn("could not release outbox claims; they are taken over when their lease ends", "entries", len(entries), "error", rerr)
		}
		if errors.Is(err, publisher.ErrNotConnected) || errors.Is(err, publisher.ErrBlocked) {
			return 0, nil
		}
		return 0, err
	}
	var (
		published, unroutable []int64
		released              []store.OutboxRelease
		unroutableUUIDs       map[string][]string // per routing key
	)
	counted := make([]bool, len(results))
	for i, res := range results {
		e := entries[i]
		switch res.Outcome {
		case publisher.Published:
			published = append(published, e.ID)
		case publisher.Unroutable:
			unroutable = append(unroutable, e.ID)
			key := publisher.RoutingKey(e.Trigger.APIVersion)
			if unroutableUUIDs == nil {
				unroutableUUIDs = map[string][]string{}
			}
			unroutableUUIDs[key] = append(unroutableUUIDs[key], e.Trigger.UUID)
		default:
			if stopping || errors.Is(res.Err, publisher.ErrBlocked) {
				// Not an attempt that failed: the entry waits as it is.
				released = append(released, store.OutboxRelease{ID: e.ID})
				continue
			}
			msg := "not confirmed"
			if res.Err != nil {
				msg = res.Err.Error()
			}
			released = append(released, store.OutboxRelease{ID: e.ID, Failed: true, Delay: r.retryDelay(e.Attempts), Error: msg})
		}
		counted[i] = true
	}
	r.logUnroutable(unroutableUUIDs)
	now := time.Now()
	settleErr := r.store.Settle(rctx, r.cfg.Owner, published, unroutable, now)
	if err := r.store.ReleaseOutbox(rctx, r.cfg.Owner, released); err != nil {
		r.log.Warn("could not release outbox claims; they are taken over when their lease ends", "entries", len(released), "error", err)
	}
	if settleErr != nil {
		// The entries stay claimed until their lease ends, then are
		// published again: consumers de-duplicate on the message id.
		return 0, settleErr
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

// startPublish starts the publish span of an outbox entry: a producer
// span in the trace the trigger was stored with (a root span when it was
// stored without one). Its context goes in the message's headers.
func (r *Relay) startPublish(ctx context.Context, e store.OutboxEntry) (context.Context, trace.Span) {
	exchange := r.pub.Exchange()
	ctx, span := r.cfg.Tracer.Start(tracing.Decode(ctx, e.Trigger.TraceContext), "publish "+exchange, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", exchange),
			attribute.String("messaging.rabbitmq.destination.routing_key", publisher.RoutingKey(e.Trigger.APIVersion)),
			attribute.String("messaging.message.id", e.Trigger.UUID),
			attribute.Int("routing.attempt", e.Attempts+1))
	}
	return ctx, span
}

// logUnroutable warns once per routing key of a round about the
// triggers no queue took, naming up to five of them: a round of 500
// unroutable triggers is five hundred lines otherwise. Each is stored as
// unroutable, where GET /triggers?status=unroutable lists them all.
func (r *Relay) logUnroutable(byKey map[string][]string) {
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		uuids := byKey[key]
		r.log.Warn("triggers unroutable: no queue is bound for their routing key; republish them once a consumer is bound",
			"routingKey", key, "triggers", len(uuids), "uuids", uuids[:min(len(uuids), 5)])
	}
}

// countReclaimed counts and logs the entries whose previous claim expired
// before this one took them over: their owner may have published them.
func (r *Relay) countReclaimed(entries []store.OutboxEntry) {
	n, from := 0, map[string]int{}
	for _, e := range entries {
		if e.ReclaimedFrom != "" {
			n++
			from[e.ReclaimedFrom]++
		}
	}
	if n == 0 {
		return
	}
	r.metrics.OutboxReclaimed.Add(float64(n))
	r.log.Warn("took over outbox entries whose claim expired: they may have been published already", "entries", n, "from", from)
}

// retryDelay is the delay before a failed entry's next attempt, after
// attempts failed ones: exponential from RetryMin, capped at RetryMax.
func (r *Relay) retryDelay(attempts int) time.Duration {
	return retry.Policy{Min: r.cfg.RetryMin, Max: r.cfg.RetryMax}.Delay(attempts)
}
