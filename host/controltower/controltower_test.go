package controltower_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/metrics/metricstest"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/sdk"
)

type stored struct {
	sdk.StoredTrigger
}

func TestPostedTriggerReachesABoundConsumer(t *testing.T) {
	p := newProxy(t)
	cfg := testConfig(t, p.url())
	c := consume(t, cfg.AMQPExchange, "OT-2.v1alpha1.#")
	_, base := start(t, cfg)

	body := []byte(`{"apiVersion":"OT-2/v1alpha1/Robot1","protocol":"PlateTransfer","plate":{"rows":2,"columns":1},"spec":[{"volume":50},{"volume":100}]}`)
	resp := call(t, http.MethodPost, base+"/triggers", body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Status, resp.Body)
	}
	var created stored
	resp.JSON(t, &created)
	if len(created.UUID) != 16 || created.Status != "pending" || created.Source != "http" ||
		resp.Header.Get("Location") != "/triggers/"+created.UUID || created.Metadata.Source != "control-tower.api" {
		t.Fatalf("created: %+v (Location %q)", created, resp.Header.Get("Location"))
	}

	waitFor(t, 10*time.Second, "the consumer to receive the trigger", func() bool { return len(c.received()) == 1 })
	d := c.received()[0]
	if d.MessageId != created.UUID || d.RoutingKey != "OT-2.v1alpha1.Robot1" || d.ContentType != "application/json" ||
		d.Type != "protocol" || d.AppId != "control-tower" || d.DeliveryMode != 2 ||
		d.Headers["apiVersion"] != "OT-2/v1alpha1/Robot1" || d.Headers["protocol"] != "PlateTransfer" || d.Headers["source"] != "http" {
		t.Fatalf("message properties: %+v", d)
	}
	var onWire sdk.Trigger
	must(t, sdk.DecodeStrict(d.Body, &onWire))
	if onWire.UUID != created.UUID || string(onWire.Spec) != `[{"volume":50},{"volume":100}]` || onWire.Plate.Rows != 2 {
		t.Fatalf("message body: %s", d.Body)
	}

	waitFor(t, 10*time.Second, "the trigger to be marked published", func() bool {
		var got stored
		r := call(t, http.MethodGet, base+"/triggers/"+created.UUID, nil)
		r.JSON(t, &got)
		return got.Status == "published" && got.PublishedAt != nil
	})

	// Re-posting the same trigger under its uuid is idempotent; a
	// different body under it is a conflict.
	withUUID := []byte(`{"uuid":"` + created.UUID + `","protocol":"PlateTransfer","apiVersion":"OT-2/v1alpha1/Robot1",
		"plate":{"rows":2,"columns":1},"spec":[{"volume":50},{"volume":100}]}`)
	if r := call(t, http.MethodPost, base+"/triggers", withUUID); r.Status != http.StatusOK {
		t.Fatalf("idempotent re-post: %d %s", r.Status, r.Body)
	}
	conflict := []byte(`{"uuid":"` + created.UUID + `","apiVersion":"OT-2/v1alpha1","protocol":"Other","spec":{"a":1}}`)
	if r := call(t, http.MethodPost, base+"/triggers", conflict); r.Status != http.StatusConflict {
		t.Fatalf("conflicting re-post: %d %s", r.Status, r.Body)
	}

	// Republish sends it again.
	if r := call(t, http.MethodPost, base+"/triggers/"+created.UUID+"/republish", nil); r.Status != http.StatusAccepted {
		t.Fatalf("republish: %d %s", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "the republished trigger", func() bool { return c.ids()[created.UUID] == 2 })

	if r := call(t, http.MethodGet, base+"/triggers/nope", nil); r.Status != http.StatusNotFound || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown uuid: %d %s", r.Status, r.Body)
	}
	var list struct {
		Triggers []stored
		Next     string
	}
	// The consumer can see the republished message before the relay has
	// settled its confirm: the trigger is listed as published once it has.
	waitFor(t, 10*time.Second, "the republished trigger to be listed as published", func() bool {
		call(t, http.MethodGet, base+"/triggers?apiVersion=OT-2/v1alpha1/Robot1&status=published", nil).JSON(t, &list)
		return len(list.Triggers) == 1
	})
	if list.Triggers[0].UUID != created.UUID {
		t.Fatalf("list: %+v", list)
	}

	m := metricstest.Scrape(t, base+"/metrics", "")
	for result, want := range map[string]float64{"created": 1, "duplicate": 1, "rejected": 1} {
		if got := m.Must(t, "routing_triggers_received_total", "source", "http", "result", result); got != want {
			t.Errorf("triggers_received_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := m.Must(t, "routing_triggers_published_total", "outcome", "published"); got != 2 {
		t.Errorf("triggers_published_total{outcome=published} = %v, want 2 (published, republished)", got)
	}
	if got := m.Must(t, "routing_http_requests_total", "route", "/triggers/{uuid}", "method", "GET", "code", "404"); got != 1 {
		t.Errorf("http_requests_total for the unknown uuid = %v, want 1", got)
	}
}

func TestBadInputIsA4xxNamingTheField(t *testing.T) {
	cfg := testConfig(t, newProxy(t).url())
	_, base := start(t, cfg)
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"malformed JSON", `{"apiVersion":`, 400, ""},
		{"not JSON", `apiVersion=OT-2`, 400, ""},
		{"wrong type", `{"apiVersion":"OT-2/v1","protocol":7,"spec":{"a":1}}`, 400, "protocol"},
		{"wrong plate type", `{"apiVersion":"OT-2/v1","protocol":"P","plate":{"rows":"2","columns":1},"spec":[{},{}]}`, 400, "plate.rows"},
		{"unknown field", `{"apiVersion":"OT-2/v1","protocol":"P","spec":{"a":1},"priority":1}`, 400, "priority"},
		{"missing apiVersion", `{"protocol":"P","spec":{"a":1}}`, 422, "apiVersion"},
		{"missing protocol", `{"apiVersion":"OT-2/v1","spec":{"a":1}}`, 422, "protocol"},
		{"missing spec", `{"apiVersion":"OT-2/v1","protocol":"P"}`, 422, "spec"},
		{"invalid apiVersion", `{"apiVersion":"OT-2","protocol":"P","spec":{"a":1}}`, 422, "apiVersion"},
		{"plate/spec mismatch", `{"apiVersion":"OT-2/v1","protocol":"P","plate":{"rows":4,"columns":1},"spec":[{"v":1}]}`, 422, "spec"},
		{"empty spec", `{"apiVersion":"OT-2/v1","protocol":"P","spec":{}}`, 422, "spec"},
		{"bad uuid", `{"uuid":"no spaces","apiVersion":"OT-2/v1","protocol":"P","spec":{"a":1}}`, 422, "uuid"},
		{"oversize body", `{"apiVersion":"OT-2/v1","protocol":"P","spec":{"a":"` + strings.Repeat("x", 70000) + `"}}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, http.MethodPost, base+"/triggers", []byte(tt.body))
			if r.Status != tt.status || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d (%s) %s, want %d problem", r.Status, r.Header.Get("Content-Type"), r.Body, tt.status)
			}
			var p struct {
				Status int
				Detail string
				Errors []sdk.FieldError
			}
			r.JSON(t, &p)
			if p.Status != tt.status || p.Detail == "" {
				t.Fatalf("problem body: %s", r.Body)
			}
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.field) {
				t.Fatalf("problem does not name %q: %s", tt.field, r.Body)
			}
		})
	}
	for _, q := range []string{"status=done", "limit=0", "limit=x", "since=yesterday", "cursor=zzz"} {
		if r := call(t, http.MethodGet, base+"/triggers?"+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("GET /triggers?%s: %d %s", q, r.Status, r.Body)
		}
	}
}

func TestBrokerOutageLosesNothing(t *testing.T) {
	p := newProxy(t)
	cfg := testConfig(t, p.url())
	c := consume(t, cfg.AMQPExchange, "#")
	p.Down()
	_, base := start(t, cfg)

	const n = 30
	post := func(i int) string {
		r := call(t, http.MethodPost, base+"/triggers", fmt.Appendf(nil, `{"apiVersion":"ChiBio/v1alpha1","protocol":"Bioreactor","spec":{"n":%d}}`, i))
		if r.Status != http.StatusCreated {
			t.Fatalf("POST while the broker is down: %d %s", r.Status, r.Body)
		}
		var s stored
		r.JSON(t, &s)
		return s.UUID
	}
	accepted := map[string]bool{}
	for i := range n {
		accepted[post(i)] = true
	}
	if r := call(t, http.MethodGet, base+"/readyz", nil); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `"broker"`) {
		t.Fatalf("readyz with the broker down: %d %s", r.Status, r.Body)
	}
	var list struct{ Triggers []stored }
	call(t, http.MethodGet, base+"/triggers?status=pending&limit=100", nil).JSON(t, &list)
	if len(list.Triggers) != n {
		t.Fatalf("%d pending triggers, want %d", len(list.Triggers), n)
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if up, pending := m.Must(t, "routing_broker_connected"), m.Must(t, "routing_triggers_pending"); up != 0 || pending != n {
		t.Fatalf("metrics with the broker down: connected %v, pending %v; want 0, %d", up, pending, n)
	}
	if v, ok := m.Value("routing_triggers_published_total", "outcome", "published"); ok && v != 0 {
		t.Fatalf("published_total %v with the broker down", v)
	}

	p.Up(t)
	waitFor(t, 30*time.Second, "the backlog to reach the consumer", func() bool { return len(c.ids()) == n })

	// The connection breaks again while publishing continues.
	for i := n; i < 2*n; i++ {
		accepted[post(i)] = true
		if i == n+n/2 {
			p.Down()
			p.Up(t)
		}
	}
	waitFor(t, 30*time.Second, "every accepted trigger at the consumer", func() bool { return len(c.ids()) == 2*n })
	for id := range c.ids() {
		if !accepted[id] {
			t.Fatalf("consumer got %s, which was never accepted", id)
		}
	}
	if r := call(t, http.MethodGet, base+"/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after recovery: %d %s", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "all triggers marked published", func() bool {
		var l struct{ Triggers []stored }
		call(t, http.MethodGet, base+"/triggers?status=published&limit=500", nil).JSON(t, &l)
		return len(l.Triggers) == 2*n
	})
	m = metricstest.Scrape(t, base+"/metrics", "")
	if up, pending := m.Must(t, "routing_broker_connected"), m.Must(t, "routing_triggers_pending"); up != 1 || pending != 0 {
		t.Errorf("metrics after recovery: connected %v, pending %v; want 1, 0", up, pending)
	}
	// A broken connection may make a trigger published twice, never less.
	if v := m.Must(t, "routing_triggers_published_total", "outcome", "published"); v < 2*n {
		t.Errorf("published_total %v, want at least %d", v, 2*n)
	}
	if v := m.Must(t, "routing_trigger_publish_latency_seconds"); v < 2*n {
		t.Errorf("publish latency observations %v, want at least %d", v, 2*n)
	}
	if v := m.Must(t, "routing_triggers_received_total", "source", "http", "result", "created"); v != 2*n {
		t.Errorf("received created %v, want %d", v, 2*n)
	}
}

func TestSIGKILLAfterAcceptingLosesNothing(t *testing.T) {
	bin := buildBinary(t, "github.com/routinglayer/routing/host/cmd/control-tower", t.TempDir(), "control-tower")
	p := newProxy(t)
	exchange := randomName("test-triggers-")
	c := consume(t, exchange, "#")
	env := []string{"DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + t.TempDir(), "AMQP_URL=" + p.url(), "AMQP_EXCHANGE=" + exchange}

	p.Down() // nothing can be published before the kill
	cmd, base := runBinary(t, bin, env)
	const n = 50
	accepted := map[string]bool{}
	for i := range n {
		r := call(t, http.MethodPost, base+"/triggers", fmt.Appendf(nil, `{"apiVersion":"OT-2/v1","protocol":"P","spec":{"n":%d}}`, i))
		if r.Status != http.StatusCreated {
			t.Fatalf("POST: %d %s", r.Status, r.Body)
		}
		var s stored
		r.JSON(t, &s)
		accepted[s.UUID] = true
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	p.Up(t)
	runBinary(t, bin, env)
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d triggers accepted before the kill to be published", n), func() bool { return len(c.ids()) == n })
	for id := range c.ids() {
		if !accepted[id] {
			t.Fatalf("unexpected message %s", id)
		}
	}
}

func TestFiledropWatcherEmitsExactlyOncePerFile(t *testing.T) {
	p := newProxy(t)
	cfg := testConfig(t, p.url())
	inbox := t.TempDir()
	buildBinary(t, "github.com/routinglayer/routing/examples/cmd/watcher-filedrop", cfg.PluginsDir, "watcher-filedrop")
	cfg.Environ = append(cfg.Environ, "PLUGIN_FILEDROP_DIR="+inbox, "PLUGIN_FILEDROP_SCAN_INTERVAL=100ms")
	c := consume(t, cfg.AMQPExchange, "#")
	svc, base := start(t, cfg)

	drop := func(name, body string) {
		tmp := filepath.Join(inbox, "."+name+".tmp")
		must(t, os.WriteFile(tmp, []byte(body), 0o600))
		must(t, os.Rename(tmp, filepath.Join(inbox, name)))
	}
	drop("chibio.json", `{"apiVersion":"ChiBio/v1alpha1/ChioBio1","protocol":"Bioreactor","spec":{"od":0.42}}`)
	waitFor(t, 20*time.Second, "the dropped file to be published", func() bool { return len(c.received()) == 1 })
	first := c.received()[0]
	if first.Headers["source"] != "watcher:filedrop" || first.RoutingKey != "ChiBio.v1alpha1.ChioBio1" {
		t.Fatalf("message: key %s headers %v", first.RoutingKey, first.Headers)
	}

	running, err := svc.Plugins().Get("filedrop")
	must(t, err)
	must(t, syscall.Kill(running.PID, syscall.SIGKILL))
	waitFor(t, 20*time.Second, "the plugin to run again with a new pid", func() bool {
		st, _ := svc.Plugins().Get("filedrop")
		return st.State == pluginmgr.StateRunning && st.PID != running.PID
	})
	// The restarted plugin has scanned the directory (its State says the
	// file was emitted) before the second file arrives; the second file
	// proves it is scanning.
	drop("second.json", `{"apiVersion":"OT-2/v1alpha1","protocol":"PlateTransfer","spec":{"volume":1}}`)
	waitFor(t, 20*time.Second, "the second file to be published", func() bool { return len(c.received()) >= 2 })
	time.Sleep(500 * time.Millisecond) // several scans: any re-emission would show now
	ids := c.ids()
	if len(c.received()) != 2 || len(ids) != 2 || ids[first.MessageId] != 1 {
		t.Fatalf("want exactly one message per file across the plugin's kill, got %v", ids)
	}
	var list struct{ Triggers []stored }
	call(t, http.MethodGet, base+"/triggers?source=watcher:filedrop", nil).JSON(t, &list)
	if len(list.Triggers) != 2 {
		t.Fatalf("stored %d watcher triggers, want 2", len(list.Triggers))
	}
}

func TestTokensGuardEveryNonPublicEndpoint(t *testing.T) {
	cfg := testConfig(t, newProxy(t).url())
	cfg.APITokens = []string{"data-token-0123456789"}
	cfg.AdminTokens = []string{"admin-token-0123456789"}
	_, base := start(t, cfg)
	trigger := `{"apiVersion":"OT-2/v1","protocol":"P","spec":{"a":1}}`
	tests := []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/healthz", "", "", 200},
		{"POST", "/triggers", "", trigger, 401},
		{"GET", "/triggers", "wrong-token", "", 401},
		{"POST", "/triggers", "data-token-0123456789", trigger, 201},
		{"GET", "/triggers", "data-token-0123456789", "", 200},
		{"GET", "/plugins", "", "", 401},
		{"GET", "/plugins", "data-token-0123456789", "", 403},
		{"POST", "/plugins/rescan", "data-token-0123456789", "", 403},
		{"GET", "/plugins", "admin-token-0123456789", "", 200},
		{"POST", "/triggers", "admin-token-0123456789", trigger, 201},
		{"GET", "/", "", "", 200}, // the status page holds no data
		{"GET", "/metrics", "", "", 401},
		{"GET", "/metrics", "data-token-0123456789", "", 403},
		{"GET", "/metrics", "admin-token-0123456789", "", 200},
		{"GET", "/status", "", "", 401},
		{"GET", "/status", "data-token-0123456789", "", 403},
		{"GET", "/status", "admin-token-0123456789", "", 200},
		{"POST", "/plugins/nope/restart", "data-token-0123456789", "", 403},
		{"POST", "/plugins/nope/restart", "admin-token-0123456789", "", 404},
	}
	for _, tt := range tests {
		if got := testkit.Status(t, tt.method, base+tt.path, tt.token, tt.body); got != tt.want {
			t.Errorf("%s %s with %q: %d, want %d", tt.method, tt.path, tt.token, got, tt.want)
		}
	}
}
