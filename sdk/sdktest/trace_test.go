package sdktest_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/sdktest"
)

// remoteSpan is ctx carrying a span context from elsewhere, as a traced
// caller's.
func remoteSpan(t *testing.T, traceID, spanID, state string) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trace.ParseTraceState(state)
	if err != nil {
		t.Fatal(err)
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	}))
}

// The service's trace context reaches a pusher's Push over the wire, and
// sdk.TraceContext gives it as headers; a push without one carries none.
func TestPushCarriesTheTraceContext(t *testing.T) {
	var parent, state string
	client := sdktest.NewService().StartPusher(t, &funcPusher{push: func(ctx context.Context, _ sdk.PushRequest) error {
		parent, state = sdk.TraceContext(ctx)
		return nil
	}}, sdktest.Options{})
	ctx := remoteSpan(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "lab=robot-7")
	if err := client.Push(ctx, sdk.PushRequest{UUID: "u", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if parent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || state != "lab=robot-7" {
		t.Fatalf("Push saw traceparent %q, tracestate %q", parent, state)
	}
	if err := client.Push(context.Background(), sdk.PushRequest{UUID: "u", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if parent != "" || state != "" {
		t.Fatalf("an untraced push carried traceparent %q, tracestate %q", parent, state)
	}
}

// A watcher that emits in a trace has the service continue it: the trace
// context of the Emit call's ctx reaches the service with the emission.
func TestEmitCarriesTheTraceContext(t *testing.T) {
	s := sdktest.NewService()
	s.RunWatcher(t, newScript(func(ctx context.Context, h sdk.WatcherHost) error {
		// A watcher without OpenTelemetry, continuing an upstream trace.
		traced := sdk.WithTraceContext(ctx, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "")
		if _, err := h.Emit(traced, sampleTrigger(), "traced"); err != nil {
			return err
		}
		if _, err := h.Emit(ctx, sampleTrigger(), "plain"); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}), validConfig)
	got := s.WaitTriggers(t, 2, 10*time.Second)
	if got[0].TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || got[1].TraceParent != "" {
		t.Fatalf("emissions carried traceparents %q and %q", got[0].TraceParent, got[1].TraceParent)
	}
}
