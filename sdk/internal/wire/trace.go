package wire

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/routinglayer/routing/sdk"
)

// OutgoingTrace returns ctx with its span's trace context added to the
// outgoing gRPC metadata (traceparent, tracestate).
func OutgoingTrace(ctx context.Context) context.Context {
	parent, state := sdk.TraceContext(ctx)
	if parent == "" {
		return ctx
	}
	if state == "" {
		return metadata.AppendToOutgoingContext(ctx, "traceparent", parent)
	}
	return metadata.AppendToOutgoingContext(ctx, "traceparent", parent, "tracestate", state)
}

// IncomingTrace returns ctx carrying the trace context of the incoming
// gRPC metadata, if any.
func IncomingTrace(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	parent := md.Get("traceparent")
	if len(parent) != 1 {
		return ctx
	}
	state := md.Get("tracestate")
	if len(state) != 1 {
		state = []string{""}
	}
	return sdk.WithTraceContext(ctx, parent[0], state[0])
}
