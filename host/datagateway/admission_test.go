package datagateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With MAX_BACKLOG_AGE, intake answers 429 (Retry-After: 1) while a
// delivering pusher's oldest due task has waited longer than that, and
// takes requests again once delivery has caught up.
func TestIntakeWaitsWhileDeliveryIsBehind(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "hang")
	must(t, os.WriteFile(hang, nil, 0o600))
	e := newEnv(t, "MAX_BACKLOG_AGE=300ms", "PUSH_TIMEOUT=2s")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_HANG_IF_EXISTS="+hang)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	if r := call(t, http.MethodPost, base+"/data", `{"uuid":"slow","row":{"index":0,"data":{"v":1}}}`); r.Status != http.StatusAccepted {
		t.Fatalf("first POST: %d %s", r.Status, r.Body)
	}
	var last response
	waitFor(t, 30*time.Second, "a 429 once the stuck task waited over 300ms", func() bool {
		last = call(t, http.MethodPost, base+"/data", `{"uuid":"other","row":{"index":0,"data":{"v":2}}}`)
		return last.Status == http.StatusTooManyRequests
	})
	if last.Header.Get("Retry-After") != "1" || !strings.Contains(string(last.Body), "MAX_BACKLOG_AGE=300ms") || !strings.Contains(string(last.Body), "probe") {
		t.Fatalf("429 without Retry-After: 1 or without naming the limit and the pusher: %q %s", last.Header.Get("Retry-After"), last.Body)
	}
	must(t, os.Remove(hang))
	waitFor(t, 60*time.Second, "intake to take requests again once the backlog is delivered", func() bool {
		return call(t, http.MethodPost, base+"/data", `{"uuid":"later","row":{"index":0,"data":{"v":3}}}`).Status == http.StatusAccepted
	})
	waitFor(t, 60*time.Second, "every accepted row delivered", func() bool {
		return len(lines(t, e.out, "probe")) >= 2
	})
}
