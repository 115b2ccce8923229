package client

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// traceContext reads and writes W3C Trace Context: the traceparent and
// tracestate headers of a message or a request.
var traceContext = propagation.TraceContext{}

// withTrace returns ctx carrying the trace context of a message's
// traceparent and tracestate headers, if it has them.
func withTrace(ctx context.Context, h map[string]any) context.Context {
	parent, _ := h["traceparent"].(string)
	if parent == "" {
		return ctx
	}
	state, _ := h["tracestate"].(string)
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": parent, "tracestate": state})
}
