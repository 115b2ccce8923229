package testkit

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Span is a span as an OTLP receiver got it.
type Span struct {
	Service  string // the resource's service.name
	Name     string
	Kind     tracepb.Span_SpanKind
	TraceID  string // hex
	SpanID   string // hex
	ParentID string // hex, "" for a root span
	// Links are the linked spans' trace ids (hex).
	Links []string
	Attrs map[string]string
	// Failed is set when the span's status is error.
	Failed bool
}

// OTLP is an OTLP trace receiver (a collector's receiving end) for tests:
// over HTTP (protobuf or JSON on /v1/traces) or gRPC.
type OTLP struct {
	// URL is the endpoint to configure: the base URL for HTTP
	// (OTEL_EXPORTER_OTLP_ENDPOINT), the address URL for gRPC.
	URL string

	mu    sync.Mutex
	spans []Span
}

// NewOTLP starts an OTLP/HTTP receiver until the test ends.
func NewOTLP(tb testing.TB) *OTLP {
	o := &OTLP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			if r.Header.Get("Content-Type") == "application/json" {
				err = unmarshalOTLPJSON(body, &req)
			} else {
				err = proto.Unmarshal(body, &req)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.add(&req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	tb.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

// unmarshalOTLPJSON decodes OTLP/JSON, whose trace and span ids are hex
// strings where protobuf's JSON mapping has base64.
func unmarshalOTLPJSON(body []byte, req *collectortrace.ExportTraceServiceRequest) error {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					b, err := hex.DecodeString(s)
					if err != nil {
						return fmt.Errorf("%s %q: %w", k, s, err)
					}
					v[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
				if err := walk(x); err != nil {
					return err
				}
			}
		case []any:
			for _, x := range v {
				if err := walk(x); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(body, req)
}

// NewOTLPGRPC starts an OTLP/gRPC receiver until the test ends.
func NewOTLPGRPC(tb testing.TB) *OTLP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(tb, err)
	o := &OTLP{URL: "http://" + ln.Addr().String()}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, grpcReceiver{o: o})
	go func() { _ = s.Serve(ln) }()
	tb.Cleanup(s.Stop)
	return o
}

type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	o *OTLP
}

func (g grpcReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.o.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (o *OTLP) add(req *collectortrace.ExportTraceServiceRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				span := Span{
					Service: service, Name: s.GetName(), Kind: s.GetKind(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Attrs:  attrs(s.GetAttributes()),
					Failed: s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					span.ParentID = hex.EncodeToString(p)
				}
				for _, l := range s.GetLinks() {
					span.Links = append(span.Links, hex.EncodeToString(l.GetTraceId()))
				}
				o.spans = append(o.spans, span)
			}
		}
	}
}

// attrs renders attribute values as strings.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		default:
			b, _ := protojson.Marshal(v)
			m[kv.GetKey()] = string(b)
		}
	}
	return m
}

// Spans returns the spans received so far, of trace traceID (hex) or,
// with "", all of them.
func (o *OTLP) Spans(traceID string) []Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Span
	for _, s := range o.spans {
		if traceID == "" || s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Find returns the first span received of service named name in trace
// traceID ("" for any trace), and whether there is one.
func (o *OTLP) Find(traceID, service, name string) (Span, bool) {
	for _, s := range o.Spans(traceID) {
		if s.Service == service && s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}
