package statuspage_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/routinglayer/routing/host/metrics/metricstest"
)

// evilPage posts a trigger to the control-tower at target the way any web
// page can without asking: "simple" requests in no-cors mode, text/plain
// and a typeless Blob, plus a republish that needs no body.
const evilPage = `<!doctype html><title>cat pictures</title><script>
const target = %q;
const trigger = '{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150}}';
Promise.allSettled([
  fetch(target + "/triggers", {mode: "no-cors", method: "POST", headers: {"Content-Type": "text/plain"}, body: trigger}),
  fetch(target + "/triggers", {mode: "no-cors", method: "POST", body: new Blob([trigger])}),
  fetch(target + "/triggers/robot1/republish", {mode: "no-cors", method: "POST"}),
]).then(() => { document.title = "sent"; });
</script>`

// A page of another site open in the lab's browser cannot start a robot:
// its requests reach the control-tower (open on loopback without tokens,
// as make runs it) and are refused, and no trigger is stored. Then the
// same through DNS rebinding: a script running under a foreign name that
// resolves to 127.0.0.1 posts real JSON, same-origin.
func TestAWebPageCannotStartARobot(t *testing.T) {
	browser := chromium(t)
	tower := startTower(t).URL()

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, evilPage, tower)
	}))
	t.Cleanup(evil.Close)

	refused := func(route, code string) float64 {
		v, _ := metricstest.Scrape(t, tower+"/metrics", "").Value("routing_http_requests_total", "route", route, "method", "POST", "code", code)
		return v
	}
	runCtx := browse(t, browser)
	err := chromedp.Do(runCtx,
		chromedp.Navigate(evil.URL),
		until(`document.title === "sent"`, 20*time.Second),
	)
	if err != nil {
		t.Fatalf("the page did not send its requests: %v", err)
	}
	waitFor(t, 10*time.Second, "the page's requests to reach the control-tower and be refused", func() bool {
		return refused("/triggers", "403") == 2 && refused("/triggers/{uuid}/republish", "403") == 1
	})

	// DNS rebinding, played with Chromium's resolver rules: the page's
	// name resolves to 127.0.0.1, so its script is same-origin with the
	// control-tower and may post JSON.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(tower, "http://"))
	rebound := "http://rebind.example:" + port
	rebindCtx := browse(t, browser, chromedp.Flag("host-resolver-rules", "MAP rebind.example 127.0.0.1"))
	if err := chromedp.Do(rebindCtx, chromedp.Navigate(rebound+"/healthz")); err != nil {
		t.Fatalf("the rebound page: %v", err)
	}
	status, err := chromedp.Run(rebindCtx, chromedp.Evaluate[float64](`fetch("/triggers", {method: "POST",
		headers: {"Content-Type": "application/json"},
		body: '{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150}}'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("the rebound page: %v", err)
	}
	if status != http.StatusForbidden || refused("/triggers", "403") != 3 {
		t.Fatalf("a JSON post under a rebound name got %v (403s counted: %v), want 403", status, refused("/triggers", "403"))
	}

	resp, err := http.Get(tower + "/triggers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Triggers []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /triggers: %d %v", resp.StatusCode, err)
	}
	if len(list.Triggers) != 0 {
		t.Fatalf("a web page stored %d triggers", len(list.Triggers))
	}
}
