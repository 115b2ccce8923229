// Package tracing is the services' OpenTelemetry tracing: the standard
// OTEL_* configuration (Config), the tracer provider that exports spans
// over OTLP while an endpoint is configured and exports nothing otherwise
// (Start), the HTTP middleware that continues a caller's W3C traceparent
// (Middleware), and the trace context as it is stored beside a trigger or
// a data request until it is published or pushed (Encode, Decode).
//
// Even with nothing exported, an incoming traceparent is passed on: the
// trigger's AMQP message and the pushers' calls carry it, so a caller
// that traces sees its trace continue in the service layer.
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr/funcr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/routinglayer/routing/sdk"
)

// Config is the tracing configuration: the OpenTelemetry SDK's standard
// variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// Spans are exported only when an OTLP endpoint is set or
// OTEL_TRACES_EXPORTER=otlp; the exporter reads the remaining OTLP
// variables (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE,
// _COMPRESSION...) and the batch processor its own (OTEL_BSP_*) from the
// process environment, as the OpenTelemetry SDK does.
type Config struct {
	// Endpoint is the collector's base URL ("http://collector:4318");
	// spans go to <Endpoint>/v1/traces over HTTP, or to Endpoint over gRPC.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// TracesEndpoint is the full URL for spans, used as it is; it takes
	// precedence over Endpoint.
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	// Protocol is http/protobuf (the default), http/json or grpc;
	// TracesProtocol, when set, takes precedence.
	Protocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	TracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	// Exporter is otlp or none; unset, spans are exported over OTLP only
	// when an endpoint is set.
	Exporter string `env:"OTEL_TRACES_EXPORTER"`
	// ServiceName is the service.name of the spans; default the
	// service's own ("control-tower", "data-gateway").
	ServiceName string `env:"OTEL_SERVICE_NAME"`
	// Sampler and SamplerArg choose which traces are recorded:
	// parentbased_always_on (the default), parentbased_always_off,
	// parentbased_traceidratio, always_on, always_off or traceidratio,
	// whose SamplerArg is the ratio, 0 to 1 (default 1).
	Sampler    string `env:"OTEL_TRACES_SAMPLER"`
	SamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
	// Disabled turns tracing off whatever else is set.
	Disabled bool `env:"OTEL_SDK_DISABLED"`

	// The variables below are read by the exporter and the batch span
	// processor themselves, from the process environment; they are read
	// here only to refuse a bad value at start, naming it, rather than
	// have the SDK ignore it.
	Headers            string `env:"OTEL_EXPORTER_OTLP_HEADERS"`
	TracesHeaders      string `env:"OTEL_EXPORTER_OTLP_TRACES_HEADERS"`
	Timeout            string `env:"OTEL_EXPORTER_OTLP_TIMEOUT"`
	TracesTimeout      string `env:"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"`
	Compression        string `env:"OTEL_EXPORTER_OTLP_COMPRESSION"`
	TracesCompression  string `env:"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"`
	Certificate        string `env:"OTEL_EXPORTER_OTLP_CERTIFICATE"`
	TracesCertificate  string `env:"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"`
	ResourceAttributes string `env:"OTEL_RESOURCE_ATTRIBUTES"`
	BSPScheduleDelay   string `env:"OTEL_BSP_SCHEDULE_DELAY"`
	BSPExportTimeout   string `env:"OTEL_BSP_EXPORT_TIMEOUT"`
	BSPMaxQueueSize    string `env:"OTEL_BSP_MAX_QUEUE_SIZE"`
	BSPMaxExportBatch  string `env:"OTEL_BSP_MAX_EXPORT_BATCH_SIZE"`
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool {
	if c.Disabled || c.Exporter == "none" {
		return false
	}
	return c.Endpoint != "" || c.TracesEndpoint != "" || c.Exporter == "otlp"
}

func (c Config) protocol() string {
	switch {
	case c.TracesProtocol != "":
		return c.TracesProtocol
	case c.Protocol != "":
		return c.Protocol
	}
	return "http/protobuf"
}

// Validate checks the settings; each error names its variable and what
// it accepts.
func (c Config) Validate() error {
	switch c.Exporter {
	case "", "otlp", "none":
	default:
		return fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none", c.Exporter)
	}
	for _, p := range []struct{ name, v string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", c.Protocol}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", c.TracesProtocol},
	} {
		switch p.v {
		case "", "grpc", "http/protobuf", "http/json":
		default:
			return fmt.Errorf("%s=%q: want http/protobuf, http/json or grpc", p.name, p.v)
		}
	}
	for _, e := range []struct{ name, v string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.TracesEndpoint},
	} {
		if e.v == "" {
			continue
		}
		if u, err := url.Parse(e.v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s=%q: want a URL, e.g. http://collector:4318 (http/protobuf) or http://collector:4317 (grpc)", e.name, e.v)
		}
	}
	if _, err := c.sampler(); err != nil {
		return err
	}
	return c.validateSDKVariables()
}

// validateSDKVariables checks the variables the SDK reads itself.
func (c Config) validateSDKVariables() error {
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_HEADERS", c.Headers}, {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", c.TracesHeaders},
		{"OTEL_RESOURCE_ATTRIBUTES", c.ResourceAttributes},
	} {
		if err := keyValues(v.value); err != nil {
			return fmt.Errorf("%s: %w: want comma-separated key=value pairs, values URL-encoded (e.g. api-key=secret,tenant=lab)", v.name, err)
		}
	}
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_TIMEOUT", c.Timeout}, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", c.TracesTimeout},
		{"OTEL_BSP_SCHEDULE_DELAY", c.BSPScheduleDelay}, {"OTEL_BSP_EXPORT_TIMEOUT", c.BSPExportTimeout},
		{"OTEL_BSP_MAX_QUEUE_SIZE", c.BSPMaxQueueSize}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", c.BSPMaxExportBatch},
	} {
		if n, err := strconv.Atoi(v.value); v.value != "" && (err != nil || n < 0) {
			return fmt.Errorf("%s=%q: want a whole number (milliseconds for a time, e.g. 5000)", v.name, v.value)
		}
	}
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_COMPRESSION", c.Compression}, {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", c.TracesCompression},
	} {
		if v.value != "" && v.value != "gzip" && v.value != "none" {
			return fmt.Errorf("%s=%q: want gzip or none", v.name, v.value)
		}
	}
	for _, v := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_CERTIFICATE", c.Certificate}, {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", c.TracesCertificate},
	} {
		if v.value == "" {
			continue
		}
		if _, err := os.ReadFile(v.value); err != nil {
			return fmt.Errorf("%s=%q: %w: want a readable PEM file of the collector's certificate authority", v.name, v.value, err)
		}
	}
	return nil
}

// keyValues checks a W3C Baggage-like list, "k1=v1,k2=v2", as the OTLP
// headers and resource attributes are written.
func keyValues(list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	for _, kv := range strings.Split(list, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%q is not key=value", kv)
		}
		if _, err := url.PathUnescape(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("the value of %q: %w", strings.TrimSpace(k), err)
		}
	}
	return nil
}

// Describe says, in a few words for the start's log line, where spans go
// ("http/protobuf to http://collector:4318/v1/traces") or why none are
// exported.
func (c Config) Describe() string {
	switch {
	case c.Disabled:
		return "off (OTEL_SDK_DISABLED=true)"
	case c.Exporter == "none":
		return "off (OTEL_TRACES_EXPORTER=none)"
	case !c.Enabled():
		return "off (no OTEL_EXPORTER_OTLP_ENDPOINT)"
	}
	endpoint := c.TracesEndpoint
	switch {
	case endpoint != "":
	case c.Endpoint != "" && c.protocol() == "grpc":
		endpoint = c.Endpoint
	case c.Endpoint != "":
		endpoint = tracesURL(c.Endpoint)
	default:
		endpoint = "the exporter's default endpoint"
	}
	return c.protocol() + " to " + endpoint
}

// tracesURL is the URL of spans under an OTLP/HTTP base URL: its path
// with /v1/traces added, its query kept.
func tracesURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return strings.TrimSuffix(base, "/") + "/v1/traces"
	}
	return u.JoinPath("v1", "traces").String()
}

// sampler is the sampler OTEL_TRACES_SAMPLER and its argument name.
func (c Config) sampler() (sdktrace.Sampler, error) {
	ratio := 1.0
	if c.SamplerArg != "" && strings.HasSuffix(c.Sampler, "traceidratio") {
		r, err := strconv.ParseFloat(c.SamplerArg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1, e.g. 0.25", c.SamplerArg)
		}
		ratio = r
	}
	switch c.Sampler {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want parentbased_always_on, parentbased_always_off, parentbased_traceidratio, always_on, always_off or traceidratio", c.Sampler)
}

// Provider is a service's tracer provider.
type Provider struct {
	trace.TracerProvider
	enabled  bool
	shutdown func(context.Context) error
}

// Disabled is a provider that records and exports nothing; its spans
// carry their parent's trace context, so what comes in is passed on.
func Disabled() *Provider {
	return &Provider{TracerProvider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
}

// Start returns the tracer provider cfg configures for the service name
// (the spans' service.name unless OTEL_SERVICE_NAME is set) and its
// instance (service.instance.id): with an exporter when cfg is Enabled,
// else Disabled. The exporter connects lazily: a collector that is down
// loses spans, never fails or slows the service.
func Start(ctx context.Context, cfg Config, name, instance string) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return Disabled(), nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sampler, _ := cfg.sampler()
	attrs := []attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("service.instance.id", instance),
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		attrs = append(attrs, attribute.String("service.version", bi.Main.Version))
	}
	// Later detectors win: the service's own name and instance, then what
	// OTEL_RESOURCE_ATTRIBUTES says (service.name included), then
	// OTEL_SERVICE_NAME, as the specification orders them.
	detectors := []resource.Option{resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv()}
	if cfg.ServiceName != "" {
		detectors = append(detectors, resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)))
	}
	res, err := resource.New(ctx, detectors...)
	if err != nil && res == nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, enabled: true, shutdown: tp.Shutdown}, nil
}

// newExporter is the OTLP span exporter of cfg's protocol and endpoint.
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	var err error
	var exp sdktrace.SpanExporter
	switch cfg.protocol() {
	case "grpc":
		var opts []otlptracegrpc.Option
		if u := cmp.Or(cfg.TracesEndpoint, cfg.Endpoint); u != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(u))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		var opts []otlptracehttp.Option
		switch {
		case cfg.TracesEndpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.TracesEndpoint))
		case cfg.Endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)))
		}
		if cfg.protocol() == "http/json" {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// Enabled reports whether p records and exports spans.
func (p *Provider) Enabled() bool { return p.enabled }

// Tracer is the tracer of one of the service's packages, named by its
// import path.
func (p *Provider) Tracer(pkg string) trace.Tracer { return p.TracerProvider.Tracer(pkg) }

// Shutdown exports the spans still buffered, within ctx, and stops the
// exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// LogTo sends the OpenTelemetry SDK's own messages (a failed export, a
// value it could not use) to warn, instead of the standard library's
// log; it applies to the whole process.
func LogTo(warn func(msg string, args ...any)) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { warn("tracing: " + err.Error()) }))
	otel.SetLogger(funcr.New(func(prefix, args string) { warn("tracing: " + strings.TrimSpace(prefix+" "+args)) }, funcr.Options{}))
}

// propagator reads and writes W3C Trace Context: the traceparent and
// tracestate headers.
var propagator = propagation.TraceContext{}

// Encode returns ctx's trace context as it is stored beside a trigger or a
// data request: "<traceparent>" or "<traceparent>\n<tracestate>", or ""
// when ctx carries none.
func Encode(ctx context.Context) string {
	parent, state := sdk.TraceContext(ctx)
	if state != "" {
		return parent + "\n" + state
	}
	return parent
}

// Decode returns ctx with the remote trace context stored as Encode
// wrote it; ctx itself when stored is empty or not a valid traceparent.
func Decode(ctx context.Context, stored string) context.Context {
	if stored == "" {
		return ctx
	}
	parent, state, _ := strings.Cut(stored, "\n")
	return sdk.WithTraceContext(ctx, parent, state)
}
