package clientkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/sdk/client"
)

// A trace a lab client starts goes the whole way, through both services
// and the service layer: a trigger posted with a traceparent reaches the
// consumer with the same trace id in its AMQP headers, the rows the
// consumer posts in its handler (with the handler's context) carry it on
// to the data-gateway, and the pusher plugin's Push sees it on its
// context. An OTLP receiver gets each service's spans of that trace, in
// order: the control-tower's request, store write and publish (the
// header's parent), the data-gateway's request, store write, delivery and
// push (the plugin's parent), with the control-tower's answer to the
// gateway's lookup of the trigger under the delivery, and the plugin's own call to its destination
// through OpenTelemetry's HTTP instrumentation carries the push span on.
// The control-tower runs in this process and
// the data-gateway as its binary, both configured by OTEL_* variables
// alone.
func TestATraceGoesFromTheClientThroughBothServicesToThePlugin(t *testing.T) {
	otlp := testkit.NewOTLP(t)
	// The batch span processor's delay, read from the environment as the
	// OpenTelemetry SDK does: spans arrive within a tenth of a second.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	otel := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}
	var mu sync.Mutex

	var cfg controltower.Config
	must(t, config.Load(&cfg, append([]string{
		"SERVER_PORT=0",
		"DATA_DIR=" + t.TempDir(),
		"PLUGINS_DIR=" + t.TempDir(),
		"AMQP_URL=" + brokerURL(),
		"AMQP_EXCHANGE=" + testkit.RandomName("test-triggers-"),
	}, otel...)))
	cfg.Environ = []string{"PATH=" + os.Getenv("PATH")}
	_, tower := testkit.Start(t, controltower.Start, cfg)
	// The pusher calls its destination with its Push's context through
	// OpenTelemetry's HTTP instrumentation, setting nothing up itself.
	var echoed []string
	destination := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		echoed = append(echoed, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	t.Cleanup(destination.Close)
	g := newGateway(t, true, append(otel, "PLUGIN_PROBE_ECHO="+destination.URL, "CONTROL_TOWER_URL="+tower)...)
	g.start()

	queue := testkit.RandomName("test-traced-")
	deleteQueues(t, queue, cfg.AMQPExchange)
	rows, err := client.NewRows(client.RowsOptions{URL: g.url(), BatchDelay: 20 * time.Millisecond})
	must(t, err)
	var header string
	handler := func(ctx context.Context, m client.Message) error {
		mu.Lock()
		header, _ = m.Headers["traceparent"].(string)
		mu.Unlock()
		_, err := rows.Post(ctx, m.Trigger.UUID, []client.Row{{Index: client.Well(0), Data: json.RawMessage(`{"od":"0.42"}`)}})
		return err
	}
	var lg logs
	run(t, brokerURL(), "#", handler, client.ConsumeOptions{Queue: queue, Exchange: cfg.AMQPExchange}, &lg)

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		caller  = "00f067aa0ba902b7"
	)
	req, err := http.NewRequest(http.MethodPost, tower+"/triggers", strings.NewReader(`{"apiVersion":"OT-2/v1alpha1","protocol":"Traced","spec":{"volume":1}}`))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+caller+"-01")
	req.Header.Set("tracestate", "lab=robot-7")
	if r := testkit.Send(t, req); r.Status != http.StatusCreated {
		t.Fatalf("POST /triggers: %d %s", r.Status, r.Body)
	}

	var pushed string
	waitFor(t, 30*time.Second, "the row at the pusher", func() bool {
		for _, r := range readRows(t, g.out) {
			pushed = r.Traceparent
			return true
		}
		return false
	})
	mu.Lock()
	got, destinationSaw := header, slices.Clone(echoed)
	mu.Unlock()
	if len(destinationSaw) != 1 || destinationSaw[0] != pushed {
		t.Fatalf("the destination saw traceparents %q, want the plugin's %q", destinationSaw, pushed)
	}
	if parts := strings.Split(got, "-"); len(parts) != 4 || parts[1] != traceID || parts[2] == caller {
		t.Fatalf("AMQP traceparent header %q: want trace %s and the publish span's id", got, traceID)
	}
	if parts := strings.Split(pushed, "-"); len(parts) != 4 || parts[1] != traceID {
		t.Fatalf("the plugin's Push context carried traceparent %q, want trace %s", pushed, traceID)
	}

	want := []struct{ service, name string }{
		{"control-tower", "POST /triggers"},
		{"control-tower", "INSERT triggers"},
		{"control-tower", "publish " + cfg.AMQPExchange},
		{"data-gateway", "POST /data/batch"},
		{"data-gateway", "INSERT deliveries"},
		{"data-gateway", "deliver probe"},
		{"data-gateway", "push probe"},
		{"control-tower", "GET /triggers/{uuid}"}, // the gateway's lookup of the trigger
	}
	waitFor(t, 30*time.Second, "every span of the trace at the receiver", func() bool {
		for _, w := range want {
			if _, ok := otlp.Find(traceID, w.service, w.name); !ok {
				return false
			}
		}
		return true
	})
	span := func(service, name string) testkit.Span {
		s, _ := otlp.Find(traceID, service, name)
		return s
	}
	post, insert, publish := span("control-tower", "POST /triggers"), span("control-tower", "INSERT triggers"), span("control-tower", "publish "+cfg.AMQPExchange)
	if post.ParentID != caller {
		t.Errorf("POST /triggers span's parent %q, want the caller's %s", post.ParentID, caller)
	}
	if insert.ParentID != post.SpanID || publish.ParentID != post.SpanID {
		t.Errorf("store write's parent %s and publish's parent %s: want the request's span %s", insert.ParentID, publish.ParentID, post.SpanID)
	}
	if strings.Split(got, "-")[2] != publish.SpanID {
		t.Errorf("AMQP header's parent %s, want the publish span %s", strings.Split(got, "-")[2], publish.SpanID)
	}
	if publish.Attrs["messaging.system"] != "rabbitmq" || publish.Attrs["routing.outcome"] != "published" {
		t.Errorf("publish span attributes %v", publish.Attrs)
	}
	data, stored, deliver, push := span("data-gateway", "POST /data/batch"), span("data-gateway", "INSERT deliveries"),
		span("data-gateway", "deliver probe"), span("data-gateway", "push probe")
	if data.ParentID != publish.SpanID {
		t.Errorf("POST /data/batch span's parent %s, want the publish span %s (the consumer's context)", data.ParentID, publish.SpanID)
	}
	if stored.ParentID != data.SpanID || deliver.ParentID != data.SpanID || push.ParentID != deliver.SpanID {
		t.Errorf("gateway spans: store %s->%s, deliver %s->%s, push %s->%s; want store and deliver under the request %s, push under deliver",
			stored.SpanID, stored.ParentID, deliver.SpanID, deliver.ParentID, push.SpanID, push.ParentID, data.SpanID)
	}
	if lookup := span("control-tower", "GET /triggers/{uuid}"); lookup.ParentID != deliver.SpanID {
		t.Errorf("the trigger lookup's span has parent %s, want the delivery %s", lookup.ParentID, deliver.SpanID)
	}
	if strings.Split(pushed, "-")[2] != push.SpanID {
		t.Errorf("the plugin's traceparent parent %s, want the push span %s", strings.Split(pushed, "-")[2], push.SpanID)
	}
	for _, s := range otlp.Spans(traceID) {
		if s.Failed {
			t.Errorf("span %s of %s failed", s.Name, s.Service)
		}
	}
}

// Without OTEL_* variables nothing is exported, yet a caller's trace
// context still travels: the trigger's message carries the caller's
// traceparent as it came.
func TestWithoutTracingTheCallersTraceContextIsPassedOn(t *testing.T) {
	cfg, tower := startTower(t, brokerURL())
	if cfg.Tracing.Enabled() {
		t.Fatal("tracing enabled without OTEL_* variables")
	}
	ch := amqpChannel(t)
	must(t, ch.ExchangeDeclare(cfg.AMQPExchange, "topic", true, false, false, false, nil))
	t.Cleanup(func() { _ = ch.ExchangeDelete(cfg.AMQPExchange, false, false) })
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "#", cfg.AMQPExchange, false, nil))
	msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	must(t, err)

	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req, err := http.NewRequest(http.MethodPost, tower+"/triggers", bytes.NewReader([]byte(`{"apiVersion":"OT-2/v1alpha1","protocol":"Untraced","spec":{"volume":1}}`)))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", parent)
	if r := testkit.Send(t, req); r.Status != http.StatusCreated {
		t.Fatalf("POST /triggers: %d %s", r.Status, r.Body)
	}
	select {
	case m := <-msgs:
		if got := m.Headers["traceparent"]; got != parent {
			t.Fatalf("traceparent header %v, want the caller's %s", got, parent)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30s")
	}
}
