package sdk

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceContext returns the W3C trace context (https://www.w3.org/TR/trace-context/)
// ctx carries, as its traceparent and tracestate header values, or two
// empty strings when it carries none. In Push, ctx carries the service's
// push span, itself in the trace of the request that brought the rows:
// a pusher that calls a destination over HTTP sets these headers (or
// uses OpenTelemetry's instrumentation with ctx, which needs nothing
// more, since ctx holds the span context trace.SpanContextFromContext
// returns), and the destination's work joins the trace.
func TraceContext(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// WithTraceContext returns ctx carrying the W3C trace context traceparent
// and tracestate describe (as received in headers), for a watcher that
// knows the trace its upstream event belongs to without using
// OpenTelemetry itself: Emit with the returned ctx, and the trigger's
// trace continues it. An empty or malformed traceparent returns ctx as it
// is.
func WithTraceContext(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent, "tracestate": tracestate})
}
