package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracer returns t, or a tracer that records nothing when t is nil (a
// component built without a provider, as in tests).
func Tracer(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.Tracer{}
	}
	return t
}

// StartStore starts the span of one store write in ctx: named
// "<operation> <table>" ("INSERT triggers"), of kind client, with the
// database system ("sqlite", "postgresql") as db.system.name.
func StartStore(ctx context.Context, t trace.Tracer, operation, table, dialect string) (context.Context, trace.Span) {
	if dialect == "postgres" {
		dialect = "postgresql"
	}
	ctx, span := t.Start(ctx, operation+" "+table, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() { // nothing to build while tracing is off
		span.SetAttributes(
			attribute.String("db.system.name", dialect),
			attribute.String("db.operation.name", operation),
			attribute.String("db.collection.name", table),
		)
	}
	return ctx, span
}

// End ends span, marked as failed with err's message unless err is nil
// or one of ok (outcomes that are answers, not failures).
func End(span trace.Span, err error, ok ...error) {
	if err != nil {
		failed := true
		for _, o := range ok {
			if errors.Is(err, o) {
				failed = false
			}
		}
		if failed {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// SpanContext is the remote span context stored as Encode wrote it; not
// valid when stored is empty or malformed.
func SpanContext(stored string) trace.SpanContext {
	return trace.SpanContextFromContext(Decode(context.Background(), stored))
}
