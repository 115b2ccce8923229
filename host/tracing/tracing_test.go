package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
)

func TestConfigValidateNamesTheVariable(t *testing.T) {
	for _, tt := range []struct {
		cfg  tracing.Config
		want string // "" for valid
	}{
		{tracing.Config{}, ""},
		{tracing.Config{Endpoint: "http://collector:4318", Protocol: "http/json", Sampler: "parentbased_traceidratio", SamplerArg: "0.25"}, ""},
		{tracing.Config{Endpoint: "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4318\": want a URL"},
		{tracing.Config{TracesEndpoint: "ftp://x"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{tracing.Config{Protocol: "thrift"}, "OTEL_EXPORTER_OTLP_PROTOCOL=\"thrift\": want http/protobuf, http/json or grpc"},
		{tracing.Config{TracesProtocol: "udp"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{tracing.Config{Exporter: "jaeger"}, "OTEL_TRACES_EXPORTER=\"jaeger\": want otlp or none"},
		{tracing.Config{Sampler: "sometimes"}, "OTEL_TRACES_SAMPLER=\"sometimes\""},
		{tracing.Config{Sampler: "traceidratio", SamplerArg: "1.5"}, "OTEL_TRACES_SAMPLER_ARG=\"1.5\": want a ratio from 0 to 1"},
	} {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want it to contain %q", tt.cfg, err, tt.want)
		}
	}
}

func TestEnabledOnlyWithAnEndpoint(t *testing.T) {
	for _, tt := range []struct {
		cfg  tracing.Config
		want bool
	}{
		{tracing.Config{}, false},
		{tracing.Config{ServiceName: "x", Sampler: "always_on"}, false},
		{tracing.Config{Endpoint: "http://c:4318"}, true},
		{tracing.Config{TracesEndpoint: "http://c:4318/v1/traces"}, true},
		{tracing.Config{Exporter: "otlp"}, true},
		{tracing.Config{Endpoint: "http://c:4318", Exporter: "none"}, false},
		{tracing.Config{Endpoint: "http://c:4318", Disabled: true}, false},
	} {
		if got := tt.cfg.Enabled(); got != tt.want {
			t.Errorf("%+v: Enabled %v, want %v", tt.cfg, got, tt.want)
		}
	}
}

// A stored trace context comes back as the same remote span, tracestate
// included; nothing stored is no span.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	const stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nlab=robot-7"
	ctx := tracing.Decode(context.Background(), stored)
	if got := tracing.Encode(ctx); got != stored {
		t.Fatalf("Encode(Decode(%q)) = %q", stored, got)
	}
	if sc := tracing.SpanContext(stored); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Fatalf("SpanContext: %+v", sc)
	}
	for _, bad := range []string{"", "00-zz-00f067aa0ba902b7-01", "garbage"} {
		if tracing.SpanContext(bad).IsValid() || tracing.Encode(tracing.Decode(context.Background(), bad)) != "" {
			t.Errorf("%q decoded to a span context", bad)
		}
	}
}

// With tracing off, the middleware records nothing but still reads the
// caller's traceparent into the request's context, and spans started
// from it keep the caller's trace: what comes in is passed on.
func TestDisabledPassesTheCallersTraceOn(t *testing.T) {
	p := tracing.Disabled()
	var seen string
	r := mux.NewRouter()
	r.Use(p.Middleware())
	r.HandleFunc("/triggers", func(_ http.ResponseWriter, r *http.Request) {
		ctx, span := p.Tracer("test").Start(r.Context(), "INSERT triggers")
		defer span.End()
		seen, _ = sdk.TraceContext(ctx)
	})
	req := httptest.NewRequest(http.MethodPost, "/triggers", nil)
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req.Header.Set("traceparent", caller)
	r.ServeHTTP(httptest.NewRecorder(), req)
	if seen != caller {
		t.Fatalf("the handler's span carried %q, want the caller's %q", seen, caller)
	}
}

// OTLP over HTTP with JSON encoding, the sampler honoured: a sampled
// span reaches the receiver with the service's name and instance, an
// always_off provider sends none.
func TestStartExportsOverOTLP(t *testing.T) {
	otlp := testkit.NewOTLP(t)
	ctx := context.Background()
	p, err := tracing.Start(ctx, tracing.Config{Endpoint: otlp.URL + "/", Protocol: "http/json"}, "data-gateway", "lab-1:/data")
	testkit.Must(t, err)
	if !p.Enabled() {
		t.Fatal("not enabled with an endpoint")
	}
	_, span := p.Tracer("test").Start(ctx, "push probe", trace.WithSpanKind(trace.SpanKindClient))
	span.End()
	testkit.Must(t, p.Shutdown(ctx))
	s, ok := otlp.Find("", "data-gateway", "push probe")
	if !ok || s.Kind != 3 { // SPAN_KIND_CLIENT
		t.Fatalf("received %+v", otlp.Spans(""))
	}

	off := testkit.NewOTLP(t)
	p, err = tracing.Start(ctx, tracing.Config{TracesEndpoint: off.URL + "/v1/traces", Sampler: "always_off", ServiceName: "tower-a"}, "control-tower", "i")
	testkit.Must(t, err)
	_, span = p.Tracer("test").Start(ctx, "dropped")
	span.End()
	testkit.Must(t, p.Shutdown(ctx))
	if got := off.Spans(""); len(got) != 0 {
		t.Fatalf("always_off exported %+v", got)
	}
}

// A collector that is down costs the service nothing but the spans:
// ending spans does not wait for it, and shutdown gives up once its
// context ends instead of holding the service's stop.
func TestACollectorThatIsDownDoesNotHoldTheServiceUp(t *testing.T) {
	ctx := context.Background()
	p, err := tracing.Start(ctx, tracing.Config{Endpoint: "http://127.0.0.1:1"}, "control-tower", "i")
	testkit.Must(t, err)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for range 5000 { // more than the batch processor's queue holds
			_, span := p.Tracer("test").Start(ctx, "POST /triggers")
			span.End()
		}
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("ending spans blocked while the collector is down")
	}
	stop, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_ = p.Shutdown(stop)
	}()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return within 30s of a 1s context")
	}
}
