package statuspage_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
)

// chartInterval samples the charts often, so that a test of a few
// seconds fills a good part of their window (180 samples: 18 s).
const chartInterval = 100 * time.Millisecond

// load posts path's bodies (body(i) for the i-th request) from a few
// clients until ctx ends, and counts the answers with status want.
func load(ctx context.Context, t *testing.T, url string, want int, body func(i int64) string) *atomic.Int64 {
	var n, ok atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body(n.Add(1))))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := testkit.Client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("POST %s: %v", url, err)
					}
					return
				}
				resp.Body.Close()
				if resp.StatusCode == want {
					ok.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	t.Cleanup(wg.Wait)
	return &ok
}

// chartHasData is a script that is true once the chart id has samples,
// drawn points and a maximum above zero.
func chartHasData(id string) string {
	return fmt.Sprintf(`(() => { const s = document.querySelector('svg[data-chart=%q]');
		return !!s && +s.dataset.samples > 1 && +s.dataset.points > 1 && +s.dataset.max > 0 &&
			[...s.querySelectorAll("path[data-line]")].some(p => (p.getAttribute("d").match(/L/g) || []).length > 0); })()`, id)
}

// The data-gateway's page draws rows per second received and delivered,
// and the backlog per pusher, while rows arrive: a quick pusher keeps up,
// a slow one builds a backlog.
func TestGatewayPageChartsRowsAndBacklogUnderLoad(t *testing.T) {
	browser := chromium(t)
	plugins := t.TempDir()
	for _, name := range []string{"pusher-quick", "pusher-slow"} {
		_, err := testkit.Build("github.com/routinglayer/routing/host/datagateway/testdata/probe", plugins, name)
		testkit.Must(t, err)
	}
	out := t.TempDir()
	vars := []string{
		"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + plugins,
		"ADMIN_TOKENS=" + adminToken, "PUSH_BATCH_ROWS=0",
		"PLUGIN_QUICK_OUT=" + out, "PLUGIN_SLOW_OUT=" + out, "PLUGIN_SLOW_DELAY=40ms",
		"PATH=" + os.Getenv("PATH"),
	}
	var cfg datagateway.Config
	testkit.Must(t, config.Load(&cfg, vars))
	cfg.SeriesInterval = chartInterval
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := datagateway.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Wait() })
	waitFor(t, 60*time.Second, "both pushers to run", func() bool {
		for _, name := range []string{"quick", "slow"} {
			if st, err := svc.Plugins().Get(name); err != nil || st.State != pluginmgr.StateRunning {
				return false
			}
		}
		return true
	})

	runCtx := browse(t, browser)
	testkit.Must(t, chromedp.Do(runCtx, signIn(svc.URL()+"/")))
	loadCtx, stopLoad := context.WithCancel(context.Background())
	t.Cleanup(stopLoad)
	accepted := load(loadCtx, t, svc.URL()+"/data/batch", http.StatusAccepted, func(i int64) string {
		rows := make([]string, 20)
		for j := range rows {
			rows[j] = fmt.Sprintf(`{"index":%d,"data":{"odMeasured":%d.5,"mediaTemp":37.1}}`, j, i%7)
		}
		return fmt.Sprintf(`{"uuid":"run-%d","rows":[%s]}`, i%4, strings.Join(rows, ","))
	})
	err = chromedp.Do(runCtx,
		until(chartHasData("rows"), 30*time.Second),
		until(chartHasData("backlog"), 30*time.Second),
		// Let the load run for about half the window before looking.
		chromedp.Sleep(9*time.Second),
	)
	if err != nil {
		saveScreenshot(t, runCtx, "statuspage-charts-gateway-failure.png")
		t.Fatalf("the charts do not show the load: %v", err)
	}
	saveScreenshot(t, runCtx, "statuspage-charts-gateway.png")
	stopLoad()
	if accepted.Load() == 0 {
		t.Fatal("no request was accepted")
	}
	lines, err := chromedp.Run(runCtx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('svg[data-chart] path[data-line]')].map(p => p.closest("svg").dataset.chart + ": " + p.dataset.line)`))
	testkit.Must(t, err)
	for _, want := range []string{"rows: received", "rows: delivered to quick", "rows: delivered to slow", "backlog: quick", "backlog: slow"} {
		if !contains(lines, want) {
			t.Errorf("no line %q among %q", want, lines)
		}
	}
	// Pointing at a chart shows the values of the sample under the pointer.
	legend, err := chromedp.Run(runCtx, chromedp.Evaluate[string](`(() => {
		const s = document.querySelector('svg[data-chart="rows"]'), b = s.getBoundingClientRect();
		s.dispatchEvent(new MouseEvent("mousemove", { clientX: b.left + b.width * 0.8, clientY: b.top + b.height / 2, bubbles: true }));
		return document.querySelector('[data-chart-box="rows"] .legend').textContent; })()`))
	if err != nil || !strings.Contains(legend, "at ") || !strings.Contains(legend, "received") {
		t.Errorf("pointing at the rows chart: legend %q (%v), want the values at a time", legend, err)
	}
	slowMax, err := chromedp.Run(runCtx, chromedp.Evaluate[float64](
		`Math.max(...document.querySelector('svg[data-chart="backlog"]') && lastSeries.charts.find(c => c.id === "backlog").lines.find(l => l.name === "slow").values.filter(v => v != null))`))
	if err != nil || slowMax <= 0 {
		t.Errorf("the slow pusher's backlog never rose above 0 on the chart (max %v, %v)", slowMax, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The control-tower's page draws triggers per second received and
// published, and the publish backlog, while triggers arrive.
func TestControlTowerPageChartsTriggersUnderLoad(t *testing.T) {
	browser := chromium(t)
	const amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	exchange := testkit.RandomName("statuspage-test-")
	t.Cleanup(func() {
		if conn, err := amqp.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
	var cfg controltower.Config
	testkit.Must(t, config.Load(&cfg, []string{
		"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + t.TempDir(),
		"ADMIN_TOKENS=" + adminToken, "AMQP_URL=" + amqpURL, "AMQP_EXCHANGE=" + exchange,
	}))
	cfg.SeriesInterval = chartInterval
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := controltower.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Wait() })

	runCtx := browse(t, browser)
	testkit.Must(t, chromedp.Do(runCtx, signIn(svc.URL()+"/")))
	loadCtx, stopLoad := context.WithCancel(context.Background())
	t.Cleanup(stopLoad)
	created := load(loadCtx, t, svc.URL()+"/triggers", http.StatusCreated, func(i int64) string {
		return fmt.Sprintf(`{"apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":%d}}`, 50+i%100)
	})
	err = chromedp.Do(runCtx,
		until(chartHasData("triggers"), 30*time.Second),
		until(`(() => { const s = document.querySelector('svg[data-chart="backlog"]'); return !!s && +s.dataset.samples > 1; })()`, 30*time.Second),
		chromedp.Sleep(9*time.Second),
	)
	if err != nil {
		saveScreenshot(t, runCtx, "statuspage-charts-tower-failure.png")
		t.Fatalf("the charts do not show the load: %v", err)
	}
	saveScreenshot(t, runCtx, "statuspage-charts-control-tower.png")
	stopLoad()
	if created.Load() == 0 {
		t.Fatal("no trigger was created")
	}
	lines, err := chromedp.Run(runCtx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('svg[data-chart] path[data-line]')].map(p => p.closest("svg").dataset.chart + ": " + p.dataset.line)`))
	testkit.Must(t, err)
	for _, want := range []string{"triggers: received", "triggers: published", "backlog: pending"} {
		if !contains(lines, want) {
			t.Errorf("no line %q among %q", want, lines)
		}
	}
}
