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
		{tracing.Config{Headers: "garbage"}, "OTEL_EXPORTER_OTLP_HEADERS: \"garbage\" is not key=value"},
		{tracing.Config{Headers: "api-key=s%20cret,tenant=lab"}, ""},
		{tracing.Config{ResourceAttributes: "deployment.environment=lab,=x"}, "OTEL_RESOURCE_ATTRIBUTES"},
		{tracing.Config{Timeout: "abc"}, "OTEL_EXPORTER_OTLP_TIMEOUT=\"abc\": want a whole number"},
		{tracing.Config{BSPScheduleDelay: "-5"}, "OTEL_BSP_SCHEDULE_DELAY"},
		{tracing.Config{Compression: "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\": want gzip or none"},
		{tracing.Config{Certificate: "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
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
	parent := tracing.Decode(ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	_, span := p.Tracer("test").Start(parent, "push probe", trace.WithSpanKind(trace.SpanKindClient))
	span.End()
	testkit.Must(t, p.Shutdown(ctx))
	s, ok := otlp.Find("4bf92f3577b34da6a3ce929d0e0e4736", "data-gateway", "push probe")
	if !ok || s.Kind != 3 || s.ParentID != "00f067aa0ba902b7" { // SPAN_KIND_CLIENT
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

// The start's log line says where spans go, or why none are exported; a
// base URL keeps its query when /v1/traces is added.
func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		cfg  tracing.Config
		want string
	}{
		{tracing.Config{}, "off (no OTEL_EXPORTER_OTLP_ENDPOINT)"},
		{tracing.Config{Endpoint: "http://c:4318", Disabled: true}, "off (OTEL_SDK_DISABLED=true)"},
		{tracing.Config{Endpoint: "http://c:4318", Exporter: "none"}, "off (OTEL_TRACES_EXPORTER=none)"},
		{tracing.Config{Endpoint: "http://c:4318/base/?tenant=lab"}, "http/protobuf to http://c:4318/base/v1/traces?tenant=lab"},
		{tracing.Config{Endpoint: "http://c:4317", Protocol: "grpc"}, "grpc to http://c:4317"},
		{tracing.Config{Endpoint: "http://c:4318", TracesEndpoint: "https://t/x"}, "http/protobuf to https://t/x"},
	} {
		if got := tt.cfg.Describe(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

// Span names are the route's template without its variables' patterns;
// health checks, metrics scrapes and the status page's reads make no
// spans.
func TestServerSpans(t *testing.T) {
	otlp := testkit.NewOTLP(t)
	p, err := tracing.Start(context.Background(), tracing.Config{Endpoint: otlp.URL}, "data-gateway", "i")
	testkit.Must(t, err)
	r := mux.NewRouter()
	r.Use(p.Middleware())
	ok := func(http.ResponseWriter, *http.Request) {}
	r.HandleFunc("/data/{id:[0-9]+}", ok)
	r.HandleFunc("/plugins/{name}/{action:restart|stop|start}", ok)
	r.HandleFunc("/healthz", ok)
	r.HandleFunc("/metrics", ok)
	for _, path := range []string{"/data/42", "/plugins/jsonl/restart", "/healthz", "/metrics"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	testkit.Must(t, p.Shutdown(context.Background()))
	var names []string
	for _, s := range otlp.Spans("") {
		names = append(names, s.Name+" "+s.Attrs["http.route"])
	}
	if want := []string{"GET /data/{id} /data/{id}", "GET /plugins/{name}/{action} /plugins/{name}/{action}"}; strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("spans %q, want %q", names, want)
	}
}
