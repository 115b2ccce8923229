// Package metrics defines the services' Prometheus series and serves them
// on /metrics. Each service has its own registry (so several services can
// run in one process, as tests do); counters and histograms are updated by
// the components that own the events, gauges that mirror stored state are
// read at scrape time.
//
// Series (all prefixed routing_):
//
//	control-tower
//	  triggers_received_total{source,result}   source http|watcher; result created|duplicate|rejected
//	  triggers_published_total{outcome}        published|unroutable|failed
//	  trigger_publish_latency_seconds          from stored to confirmed by the broker
//	  outbox_reclaimed_total                   outbox entries taken over after another claim expired
//	  triggers_pending                         outbox entries not yet confirmed
//	  broker_connected                         1 while connected to RabbitMQ
//	  broker_blocked                           1 while RabbitMQ blocks the connection (resource alarm)
//	data-gateway
//	  rows_received_total, deliveries_received_total
//	  rows_delivered_total{pusher}             rows a pusher took (delivered, not skipped)
//	  tasks_total{pusher,outcome}              delivered|skipped|retried|timeout|dead
//	  push_duration_seconds{pusher}            one Push call
//	  backlog_tasks{pusher}                    tasks waiting for delivery
//	  dead_letters{pusher}                     dead-lettered tasks
//	both
//	  plugin_up{plugin,kind}, plugin_state{plugin,state}, plugin_restarts_total{plugin}
//	  http_requests_total{route,method,code}, http_request_duration_seconds{route}
//	  and the Go runtime and process collectors.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

const namespace = "routing"

// NewRegistry returns a registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry, log hclog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      hclogAdapter{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
}

type hclogAdapter struct{ log hclog.Logger }

func (a hclogAdapter) Println(v ...any) { a.log.Warn("metrics", "error", v) }

// counter, counterVec and histogramVec make a series named routing_<name>.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

// Tower holds the control-tower's event series.
type Tower struct {
	// TriggersReceived counts triggers by source (http, watcher) and
	// result (created, duplicate, rejected).
	TriggersReceived *prometheus.CounterVec
	// TriggersPublished counts publish outcomes (published, unroutable,
	// failed).
	TriggersPublished *prometheus.CounterVec
	// PublishLatency observes the time from storing a trigger to its
	// broker confirm.
	PublishLatency prometheus.Histogram
	// OutboxReclaimed counts outbox entries claimed after another claim
	// of them expired: their previous owner may have published them.
	OutboxReclaimed prometheus.Counter
}

// NewTower creates the control-tower's series and registers them with reg.
func NewTower(reg prometheus.Registerer) *Tower {
	t := &Tower{
		TriggersReceived: counterVec("triggers_received_total",
			"Triggers received, by source (http, watcher) and result (created, duplicate, rejected).", "source", "result"),
		TriggersPublished: counterVec("triggers_published_total",
			"Publish attempts of stored triggers, by outcome (published, unroutable, failed).", "outcome"),
		PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "trigger_publish_latency_seconds",
			Help:    "Time from storing a trigger to the broker's confirm.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 4.4 min
		}),
		OutboxReclaimed: counter("outbox_reclaimed_total",
			"Outbox entries claimed after another instance's claim of them expired: they may have been published already."),
	}
	reg.MustRegister(t.TriggersReceived, t.TriggersPublished, t.PublishLatency, t.OutboxReclaimed)
	return t
}

// Gateway holds the data-gateway's event series.
type Gateway struct {
	// RowsReceived counts accepted rows, DeliveriesReceived accepted
	// requests.
	RowsReceived, DeliveriesReceived prometheus.Counter
	// Tasks counts push outcomes by pusher and outcome (delivered,
	// skipped, retried, timeout, dead).
	Tasks *prometheus.CounterVec
	// RowsDelivered counts the rows of delivered tasks by pusher.
	RowsDelivered *prometheus.CounterVec
	// PushDuration observes one Push call per pusher.
	PushDuration *prometheus.HistogramVec
}

// NewGateway creates the data-gateway's series and registers them with
// reg.
func NewGateway(reg prometheus.Registerer) *Gateway {
	g := &Gateway{
		RowsReceived:       counter("rows_received_total", "Data rows accepted (stored durably)."),
		DeliveriesReceived: counter("deliveries_received_total", "Data requests accepted (stored durably)."),
		Tasks: counterVec("tasks_total",
			"Push attempts by pusher and outcome (delivered, skipped, retried, timeout, dead).", "pusher", "outcome"),
		RowsDelivered: counterVec("rows_delivered_total", "Rows delivered, by pusher (skipped tasks' rows are not counted).", "pusher"),
		PushDuration: histogramVec("push_duration_seconds", "Duration of one Push call to a pusher plugin.",
			prometheus.ExponentialBuckets(0.0005, 4, 10), "pusher"), // 0.5 ms .. 2.2 min
	}
	reg.MustRegister(g.RowsReceived, g.DeliveriesReceived, g.Tasks, g.RowsDelivered, g.PushDuration)
	return g
}

// Gauge is one labelled value read at scrape time.
type Gauge struct {
	Labels []string
	Value  float64
}

// GaugeSource reads a family of gauges at scrape time.
type GaugeSource struct {
	Name   string
	Help   string
	Labels []string
	// Counter marks a cumulative value (exposed as a counter).
	Counter bool
	Read    func(ctx context.Context) ([]Gauge, error)
}

// Sampled is a collector of gauge families read at scrape time, each with
// a deadline; a family that cannot be read is left out of that scrape and
// logged, and the others are still served.
type Sampled struct {
	sources []GaugeSource
	descs   []*prometheus.Desc
	log     hclog.Logger
}

// NewSampled returns a collector over sources.
func NewSampled(log hclog.Logger, sources ...GaugeSource) *Sampled {
	s := &Sampled{sources: sources, log: log}
	for _, src := range sources {
		s.descs = append(s.descs, prometheus.NewDesc(prometheus.BuildFQName(namespace, "", src.Name), src.Help, src.Labels, nil))
	}
	return s
}

// Describe implements prometheus.Collector.
func (s *Sampled) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Sampled) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, src := range s.sources {
		values, err := src.Read(ctx)
		if err != nil {
			s.log.Warn("metric not readable", "metric", src.Name, "error", err)
			continue
		}
		kind := prometheus.GaugeValue
		if src.Counter {
			kind = prometheus.CounterValue
		}
		for _, v := range values {
			ch <- prometheus.MustNewConstMetric(s.descs[i], kind, v.Value, v.Labels...)
		}
	}
}

// Bool is 1 for true, 0 for false.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// HTTP instruments a router's requests by route template (never by raw
// path, which would make a series per uuid).
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP creates the HTTP series and registers them with reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	h := &HTTP{
		requests: counterVec("http_requests_total", "HTTP requests by route template, method and status code.", "route", "method", "code"),
		duration: histogramVec("http_request_duration_seconds", "HTTP request duration by route template.",
			prometheus.ExponentialBuckets(0.0005, 4, 9), "route"), // 0.5 ms .. 33 s
	}
	reg.MustRegister(h.requests, h.duration)
	return h
}

// Middleware records each request routed by a gorilla/mux router.
func (h *HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "other"
		if cur := mux.CurrentRoute(r); cur != nil {
			if tpl, err := cur.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		h.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		h.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Totals reads the current values of c's series (counters, gauges and
// untyped ones; histograms and summaries are left out) and sums them by
// the value of label: one entry per value, or, with label "", one entry
// "" holding the sum of them all. Series for which keep returns false
// (given their labels, name -> value) are left out; keep may be nil.
func Totals(c prometheus.Collector, label string, keep func(labels map[string]string) bool) map[string]float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		var v float64
		switch {
		case pb.Counter != nil:
			v = pb.Counter.GetValue()
		case pb.Gauge != nil:
			v = pb.Gauge.GetValue()
		case pb.Untyped != nil:
			v = pb.Untyped.GetValue()
		default:
			continue
		}
		labels := make(map[string]string, len(pb.Label))
		for _, l := range pb.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if keep != nil && !keep(labels) {
			continue
		}
		out[labels[label]] += v
	}
	if label == "" && len(out) == 0 {
		out[""] = 0
	}
	return out
}
