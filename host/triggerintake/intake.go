// Package triggerintake is the control-tower's trigger intake: one path
// for triggers posted over HTTP and triggers emitted by watcher plugins. A
// trigger is validated, then stored with its publish outbox entry in one
// transaction, and only then acknowledged to its source. The package also
// serves the trigger HTTP API. The service that assembles it with the
// store, the plugins and the relay is host/controltower.
package triggerintake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Sources of triggers, as stored.
const (
	SourceHTTP          = "http"
	watcherSourcePrefix = "watcher:"
)

// ErrConflict is returned when a uuid is reused for a different trigger.
// It is of the store's kind: errors.Is(ErrConflict, store.ErrConflict).
var ErrConflict error = conflict{}

type conflict struct{}

func (conflict) Error() string        { return "uuid already used by a different trigger" }
func (conflict) Is(target error) bool { return target == store.ErrConflict }

// Intake validates and stores triggers.
type Intake struct {
	store *store.Store
	// stored is told when a new trigger is in the outbox.
	stored  func()
	metrics *metrics.Tower
	tracer  trace.Tracer
	log     hclog.Logger
}

// New returns an Intake that calls stored after each new trigger is
// stored (to wake the publisher), counts triggers in m and records the
// spans of watchers' emissions and store writes with tracer (nil: none).
// A trigger is stored with the trace context of the request or emission
// that brought it, which its publish continues.
func New(st *store.Store, stored func(), m *metrics.Tower, tracer trace.Tracer, log hclog.Logger) *Intake {
	return &Intake{store: st, stored: stored, metrics: m, tracer: tracing.Tracer(tracer), log: log.Named("triggers")}
}

// Accept validates t and stores it from source under the idempotency key
// (may be ""). It returns the stored trigger and whether it is new: a
// trigger already stored under the key, or under t's uuid with the same
// content, is returned as it was. Errors: *sdk.ValidationError (matches
// sdk.ErrInvalid), ErrConflict, or a store failure.
func (in *Intake) Accept(ctx context.Context, t sdk.Trigger, source, key string) (sdk.StoredTrigger, bool, error) {
	return in.accept(ctx, t, source, key, nil)
}

// accept is Accept that also stores a request's Idempotency-Key (unless
// nil) with the trigger; its errors also include the store's
// *store.KeyUsedError and store.ErrKeyInFlight.
func (in *Intake) accept(ctx context.Context, t sdk.Trigger, source, key string, hk *store.IdempotencyKey) (sdk.StoredTrigger, bool, error) {
	row, created, err := in.keep(ctx, t, source, key, hk)
	if err != nil {
		return sdk.StoredTrigger{}, false, err
	}
	stored, err := decode(row)
	return stored, created, err
}

// keep is accept without decoding the stored trigger (a watcher's
// receipt needs its uuid alone).
func (in *Intake) keep(ctx context.Context, t sdk.Trigger, source, key string, hk *store.IdempotencyKey) (store.Trigger, bool, error) {
	stored, created, err := in.save(ctx, t, source, key, hk)
	kind := SourceHTTP
	if strings.HasPrefix(source, watcherSourcePrefix) {
		kind = "watcher"
	}
	switch {
	case created:
		in.metrics.TriggersReceived.WithLabelValues(kind, "created").Inc()
	case err == nil:
		in.metrics.TriggersReceived.WithLabelValues(kind, "duplicate").Inc()
	case errors.Is(err, sdk.ErrInvalid), errors.Is(err, ErrConflict):
		in.metrics.TriggersReceived.WithLabelValues(kind, "rejected").Inc()
	}
	return stored, created, err
}

func (in *Intake) save(ctx context.Context, t sdk.Trigger, source, key string, hk *store.IdempotencyKey) (store.Trigger, bool, error) {
	if err := t.Validate(); err != nil {
		return store.Trigger{}, false, err
	}
	if t.UUID == "" {
		t.UUID = newUUID()
	}
	body, err := json.Marshal(t)
	if err != nil {
		return store.Trigger{}, false, fmt.Errorf("encode trigger: %w", err)
	}
	sctx, span := tracing.StartStore(ctx, in.tracer, "INSERT", "triggers", in.store.Dialect())
	stored, created, err := in.store.InsertTriggerWithKey(sctx, hk, store.Trigger{
		UUID:           t.UUID,
		IdempotencyKey: key,
		APIVersion:     t.APIVersion,
		Protocol:       t.Protocol,
		Body:           body,
		Source:         source,
		TraceContext:   tracing.Encode(ctx),
	})
	tracing.End(span, err, store.ErrConflict) // a conflict is an answer
	if errors.Is(err, store.ErrConflict) {
		return store.Trigger{}, false, fmt.Errorf("%w: %s", ErrConflict, t.UUID)
	}
	if err != nil {
		return store.Trigger{}, false, fmt.Errorf("store trigger: %w", err)
	}
	if created {
		in.log.Debug("trigger stored", "uuid", stored.UUID, "apiVersion", stored.APIVersion, "source", source)
		in.stored()
	}
	return stored, created, nil
}

// Get returns a stored trigger; errors match store.ErrNotFound.
func (in *Intake) Get(ctx context.Context, uuid string) (sdk.StoredTrigger, error) {
	t, err := in.store.GetTrigger(ctx, uuid)
	if err != nil {
		return sdk.StoredTrigger{}, err
	}
	return decode(t)
}

// decode turns a stored row into the API's view of it.
func decode(t store.Trigger) (sdk.StoredTrigger, error) {
	out := sdk.StoredTrigger{
		CreatedAt:   t.CreatedAt,
		Source:      t.Source,
		Status:      string(t.Status),
		PublishedAt: t.PublishedAt,
	}
	if err := json.Unmarshal(t.Body, &out.Trigger); err != nil {
		return sdk.StoredTrigger{}, fmt.Errorf("decode stored trigger %s: %w", t.UUID, err)
	}
	return out, nil
}

// Sink returns the sink of one watcher instance. Its idempotency keys are
// scoped to the instance, so two watchers cannot collide on a key.
func (in *Intake) Sink(instance string) pluginhost.TriggerSink {
	return watcherSink{in: in, instance: instance}
}

type watcherSink struct {
	in       *Intake
	instance string
}

// Accept stores one emission. ctx carries the watcher's trace context
// when its Emit call had one; the emission's span continues it.
func (w watcherSink) Accept(ctx context.Context, e pluginhost.Emission) (receipt sdk.Receipt, err error) {
	ctx, span := w.in.tracer.Start(ctx, "emit "+w.instance, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("routing.watcher", w.instance)))
	defer func() {
		span.SetAttributes(attribute.String("routing.uuid", receipt.UUID), attribute.Bool("routing.duplicate", receipt.Duplicate))
		tracing.End(span, err)
	}()
	key := ""
	if e.Key != "" {
		key = w.instance + ":" + e.Key
	}
	stored, created, err := w.in.keep(ctx, e.Trigger, watcherSourcePrefix+w.instance, key, nil)
	switch {
	case errors.Is(err, ErrConflict):
		return sdk.Receipt{}, &sdk.ValidationError{Fields: []sdk.FieldError{{Field: "uuid", Reason: err.Error()}}}
	case err != nil:
		return sdk.Receipt{}, err
	}
	return sdk.Receipt{UUID: stored.UUID, Duplicate: !created}, nil
}

// newUUID returns 16 lowercase hex characters, as the original system did.
func newUUID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a time-based
		// id keeps the intake going if it ever does.
		return fmt.Sprintf("%016x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
