// Package metricstest scrapes a service's /metrics in tests, parsing it
// with the Prometheus text parser (so a malformed exposition fails the
// test) and reading single values by name and labels.
package metricstest

import (
	"fmt"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// Families are the metric families of one scrape.
type Families map[string]*dto.MetricFamily

// Scrape gets url (a /metrics endpoint) with token (may be "") through
// testkit's client (the answer checked against the service's OpenAPI
// document) and parses it; any failure fails the test.
func Scrape(tb testing.TB, url, token string) Families {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testkit.Client.Do(req)
	if err != nil {
		tb.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("scrape %s: not the Prometheus text format: %v", url, err)
	}
	return fams
}

// Value returns the value of the series name{labels} (given as name,
// value pairs; a series matches when it has at least those labels), and
// whether it exists. Counters, gauges and untyped series give their value,
// histograms their sample count.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Must is Value that fails the test when the series is missing.
func (f Families) Must(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		tb.Fatalf("no series %s%v in the scrape", name, labels)
	}
	return v
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	if len(pairs)%2 != 0 {
		panic(fmt.Sprintf("metricstest: labels %v are not name, value pairs", pairs))
	}
	for i := 0; i < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
