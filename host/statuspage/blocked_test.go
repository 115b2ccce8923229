package statuspage_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/statuspage"
)

// The page of a control-tower whose broker blocks the connection, with the
// answers a blocked control-tower gives (see the controltower package's
// brokeralarm test for the real thing).
func TestControlTowerPageShowsABlockedBroker(t *testing.T) {
	browser := chromium(t)
	r := mux.NewRouter()
	statuspage.Routes(r, "control-tower", func(context.Context) (any, error) {
		return map[string]any{"pendingTriggers": 3, "brokerConnected": true, "brokerBlocked": true, "brokerBlockedReason": "low on memory"}, nil
	}, statuspage.NewSeries(nil, 0, hclog.NewNullLogger()))
	answer := func(path string, code int, body any) {
		r.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { httpapi.WriteJSON(w, code, body) })
	}
	answer("/readyz", http.StatusServiceUnavailable, map[string]string{"broker": "broker blocked: low on memory", "store": "ok"})
	answer("/plugins", http.StatusOK, map[string]any{"plugins": []any{}})
	answer("/triggers", http.StatusOK, map[string]any{"triggers": []any{}})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	runCtx := browse(t, browser)
	err := chromedp.Do(runCtx,
		chromedp.Navigate(srv.URL+"/"),
		until(`document.getElementById("figures").textContent.includes("blocked: low on memory")`, 20*time.Second),
		until(`document.getElementById("ready").textContent.includes("broker blocked: low on memory")`, 20*time.Second),
	)
	if err != nil {
		saveScreenshot(t, runCtx, "statuspage-blocked-failure.png")
		t.Fatalf("the page does not show the blocked broker: %v", err)
	}
	class, err := chromedp.Run(runCtx, chromedp.Evaluate[string](`[...document.querySelectorAll("#figures b")].map(b => b.className).join(" ")`))
	if err != nil || !strings.Contains(class, "state-blocked") {
		t.Errorf("the broker figure is not marked blocked: classes %q (%v)", class, err)
	}
	saveScreenshot(t, runCtx, "statuspage-broker-blocked.png")
}
