package datagateway_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/metrics/metricstest"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/spool"
)

func TestRowsReachTheJSONLPusherInOrderByteExact(t *testing.T) {
	rowsDir := t.TempDir()
	e := newEnv(t, "PLUGIN_JSONL_DIR="+rowsDir)
	install(t, "pusher-jsonl", e.plugins, "pusher-jsonl")
	svc, base := start(t, e.config(t))
	waitFor(t, 60*time.Second, "the pusher to run", func() bool {
		st, err := svc.Plugins().Get("jsonl")
		return err == nil && st.State == pluginmgr.StateRunning
	})

	r := call(t, http.MethodPost, base+"/data", `{"uuid": "run1", "row": {"index": 0, "data": {"zeta": 1.50, "alpha": "x", "flag": true, "none": null}}}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST /data: %d %s", r.Status, r.Body)
	}
	var acc spool.Accepted
	r.JSON(t, &acc)
	if acc.UUID != "run1" || acc.Rows != 1 || len(acc.Pushers) != 1 || acc.Pushers[0] != "jsonl" || acc.ID == 0 {
		t.Fatalf("accepted: %+v", acc)
	}
	r = call(t, http.MethodPost, base+"/data/batch", `{"uuid":"run1","rows":[
		{"index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}},
		{"index":2,"data":{"note":"with \"quotes\" and µ","big":12345678901234567890}}]}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST /data/batch: %d %s", r.Status, r.Body)
	}
	want := `{"uuid":"run1","index":0,"data":{"zeta":1.50,"alpha":"x","flag":true,"none":null}}` + "\n" +
		`{"uuid":"run1","index":1,"data":{"odMeasured":0.42,"mediaTemp":37.1}}` + "\n" +
		`{"uuid":"run1","index":2,"data":{"note":"with \"quotes\" and µ","big":12345678901234567890}}` + "\n"
	var got []byte
	waitFor(t, 10*time.Second, "all rows in the pusher's file", func() bool {
		got, _ = os.ReadFile(filepath.Join(rowsDir, "run1.jsonl"))
		return len(got) >= len(want)
	})
	if string(got) != want {
		t.Fatalf("file:\n got %q\nwant %q", got, want)
	}

	var status spool.DeliveryStatus
	waitFor(t, 5*time.Second, "the delivery to show delivered", func() bool {
		call(t, http.MethodGet, fmt.Sprintf("%s/data/%d", base, acc.ID), "").JSON(t, &status)
		return len(status.Pushers) == 1 && status.Pushers[0].State == "delivered"
	})
	if status.Rows != 1 || status.Pushers[0].Attempts != 1 || status.Pushers[0].FinishedAt == nil {
		t.Fatalf("status: %+v", status)
	}
	if r := call(t, http.MethodGet, base+"/data/999999", ""); r.Status != http.StatusNotFound {
		t.Fatalf("unknown delivery: %d", r.Status)
	}

	m := metricstest.Scrape(t, base+"/metrics", "")
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"routing_rows_received_total", nil, 3},
		{"routing_deliveries_received_total", nil, 2},
		{"routing_tasks_total", []string{"pusher", "jsonl", "outcome", "delivered"}, 2},
		{"routing_backlog_tasks", []string{"pusher", "jsonl"}, 0},
		{"routing_plugin_up", []string{"plugin", "jsonl", "kind", "pusher"}, 1},
		{"routing_plugin_state", []string{"plugin", "jsonl", "state", "running"}, 1},
		{"routing_plugin_restarts_total", []string{"plugin", "jsonl"}, 0},
	}
	for _, c := range checks {
		if got := m.Must(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestBadDataIsA4xxNamingTheField(t *testing.T) {
	e := newEnv(t, "MAX_ROWS_PER_REQUEST=3", "MAX_BODY_BYTES=4096")
	_, base := start(t, e.config(t))
	tests := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"malformed JSON", "/data", `{"uuid":`, 400, ""},
		{"wrong uuid type", "/data", `{"uuid":5,"row":{"data":{"a":1}}}`, 400, "uuid"},
		{"unknown field", "/data", `{"uuid":"u","row":{"data":{"a":1}},"extra":1}`, 400, "extra"},
		{"unknown row field", "/data", `{"uuid":"u","row":{"data":{"a":1},"when":"now"}}`, 400, "when"},
		{"missing uuid", "/data", `{"row":{"data":{"a":1}}}`, 422, "uuid"},
		{"bad uuid", "/data", `{"uuid":"a/b","row":{"data":{"a":1}}}`, 422, "uuid"},
		{"neither row nor rows", "/data", `{"uuid":"u"}`, 422, "row"},
		{"rows on /data", "/data", `{"uuid":"u","row":{"data":{"a":1}},"rows":[{"data":{"a":1}}]}`, 422, "rows"},
		{"row on /data/batch", "/data/batch", `{"uuid":"u","row":{"data":{"a":1}},"rows":[{"data":{"a":1}}]}`, 422, "row"},
		{"neither on /data/batch", "/data/batch", `{"uuid":"u"}`, 422, "rows"},
		{"empty batch", "/data/batch", `{"uuid":"u","rows":[]}`, 422, "rows"},
		{"too many rows", "/data/batch", `{"uuid":"u","rows":[{"data":{"a":1}},{"data":{"a":1}},{"data":{"a":1}},{"data":{"a":1}}]}`, 422, "rows"},
		{"non camelCase key", "/data/batch", `{"uuid":"u","rows":[{"data":{"a":1}},{"data":{"a":1}},{"data":{"Key_One":1}}]}`, 422, "rows[2].data.Key_One"},
		{"nested value", "/data", `{"uuid":"u","row":{"data":{"a":{"b":1}}}}`, 422, "row.data.a"},
		{"array value", "/data", `{"uuid":"u","row":{"data":{"a":[1]}}}`, 422, "row.data.a"},
		{"empty data", "/data", `{"uuid":"u","row":{"data":{}}}`, 422, "row.data"},
		{"missing data", "/data", `{"uuid":"u","row":{"index":0}}`, 422, "row.data"},
		{"negative index", "/data", `{"uuid":"u","row":{"index":-1,"data":{"a":1}}}`, 422, "row.index"},
		{"fractional index", "/data", `{"uuid":"u","row":{"index":0.5,"data":{"a":1}}}`, 400, "row.index"},
		{"oversize body", "/data", `{"uuid":"u","row":{"data":{"a":"` + strings.Repeat("x", 5000) + `"}}}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, http.MethodPost, base+tt.path, tt.body)
			if r.Status != tt.status || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s, want %d problem", r.Status, r.Body, tt.status)
			}
			var p struct {
				Status int
				Errors []struct{ Field, Reason string }
			}
			r.JSON(t, &p)
			if tt.field != "" && !hasField(p.Errors, tt.field) {
				t.Fatalf("problem does not name %q: %s", tt.field, r.Body)
			}
		})
	}
	// Valid data with no pusher installed would go nowhere: 503.
	r := call(t, http.MethodPost, base+"/data", `{"uuid":"u","row":{"data":{"a":1}}}`)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("no pusher: %d %s", r.Status, r.Body)
	}
}

// waitRunning waits until the named pusher is running.
func waitRunning(tb testing.TB, svc *datagateway.Service, name string) {
	tb.Helper()
	waitFor(tb, 60*time.Second, name+" to run", func() bool {
		st, err := svc.Plugins().Get(name)
		return err == nil && st.State == pluginmgr.StateRunning
	})
}

func hasField(errs []struct{ Field, Reason string }, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

func TestRetryableFailuresThenDelivered(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_FAIL_TIMES=3")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	var acc spool.Accepted
	call(t, http.MethodPost, base+"/data", `{"uuid":"flaky","row":{"index":0,"data":{"a":1}}}`).JSON(t, &acc)

	var status spool.DeliveryStatus
	waitFor(t, 60*time.Second, "delivery after retries", func() bool {
		call(t, http.MethodGet, fmt.Sprintf("%s/data/%d", base, acc.ID), "").JSON(t, &status)
		return len(status.Pushers) == 1 && status.Pushers[0].State == "delivered"
	})
	if status.Pushers[0].Attempts != 4 {
		t.Fatalf("delivered after %d attempts, want 4 (3 failures + 1)", status.Pushers[0].Attempts)
	}
	got := lines(t, e.out, "probe")
	if len(got) != 1 || got[0].Attempt != 4 {
		t.Fatalf("want exactly one delivery, on attempt 4: %+v", got)
	}
}

func TestPermanentFailureIsDeadLetteredAndRetryWorks(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "broken")
	must(t, os.WriteFile(flag, nil, 0o600))
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_PERMANENT_IF_EXISTS="+flag)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	var acc spool.Accepted
	call(t, http.MethodPost, base+"/data", `{"uuid":"doomed","row":{"index":0,"data":{"a":1}}}`).JSON(t, &acc)

	var dead struct{ DeadLetters []spool.TaskStatus }
	waitFor(t, 60*time.Second, "the dead letter", func() bool {
		call(t, http.MethodGet, base+"/deadletters?pusher=probe&uuid=doomed", "").JSON(t, &dead)
		return len(dead.DeadLetters) == 1
	})
	d := dead.DeadLetters[0]
	if d.Attempts != 1 || !strings.Contains(d.LastError, "permanent failure as asked") || d.DeliveryID != acc.ID {
		t.Fatalf("dead letter: %+v (want dead at once, after 1 attempt)", d)
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if dl, dead := m.Must(t, "routing_dead_letters", "pusher", "probe"), m.Must(t, "routing_tasks_total", "pusher", "probe", "outcome", "dead"); dl != 1 || dead != 1 {
		t.Fatalf("metrics: dead_letters %v, tasks_total{outcome=dead} %v; want 1, 1", dl, dead)
	}

	must(t, os.Remove(flag))
	if r := call(t, http.MethodPost, fmt.Sprintf("%s/deadletters/%d/retry", base, d.ID), ""); r.Status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	waitFor(t, 60*time.Second, "the retried dead letter to be delivered", func() bool { return len(lines(t, e.out, "probe")) == 1 })
	call(t, http.MethodGet, base+"/deadletters", "").JSON(t, &dead)
	if len(dead.DeadLetters) != 0 {
		t.Fatalf("dead letters after retry: %+v", dead.DeadLetters)
	}
	m = metricstest.Scrape(t, base+"/metrics", "")
	if dl, ok := m.Must(t, "routing_dead_letters", "pusher", "probe"), m.Must(t, "routing_tasks_total", "pusher", "probe", "outcome", "delivered"); dl != 0 || ok != 1 {
		t.Fatalf("metrics after retry: dead_letters %v, tasks_total{outcome=delivered} %v; want 0, 1", dl, ok)
	}
	if r := call(t, http.MethodPost, fmt.Sprintf("%s/deadletters/%d/retry", base, d.ID), ""); r.Status != http.StatusNotFound {
		t.Fatalf("retrying a delivered task: %d", r.Status)
	}
}

// post sends n rows for uuids u0..u(k-1), batch rows per request, from
// several clients; it returns the rows that got a 202.
func post(t *testing.T, base string, uuids, perUUID, batch, clients int) int {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for c := range clients {
		wg.Go(func() {
			for u := c; u < uuids; u += clients {
				for i := 0; i < perUUID; i += batch {
					var rows []string
					for j := i; j < min(i+batch, perUUID); j++ {
						rows = append(rows, fmt.Sprintf(`{"index":%d,"data":{"value":%d}}`, j, j))
					}
					r := call(t, http.MethodPost, base+"/data/batch", fmt.Sprintf(`{"uuid":"u%d","rows":[%s]}`, u, strings.Join(rows, ",")))
					if r.Status != http.StatusAccepted {
						t.Errorf("POST: %d %s", r.Status, r.Body)
						return
					}
					mu.Lock()
					accepted += len(rows)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return accepted
}

func TestKilledPusherLosesNothing(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_DELAY=2ms")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitFor(t, 60*time.Second, "the pusher to run", func() bool {
		st, _ := svc.Plugins().Get("probe")
		return st.State == pluginmgr.StateRunning
	})

	killed := make(chan int, 1)
	go func() {
		// Kill the pusher once some rows went through.
		for len(lines(t, e.out, "probe")) < 100 {
			time.Sleep(5 * time.Millisecond)
		}
		st, _ := svc.Plugins().Get("probe")
		_ = syscall.Kill(st.PID, syscall.SIGKILL)
		killed <- st.PID
	}()
	const uuids, perUUID = 8, 125
	accepted := post(t, base, uuids, perUUID, 5, 4)
	if accepted != uuids*perUUID {
		t.Fatalf("accepted %d rows, want %d", accepted, uuids*perUUID)
	}
	pid := <-killed
	waitFor(t, 60*time.Second, "every accepted row delivered", func() bool {
		distinct, _ := checkOrder(t, lines(t, e.out, "probe"))
		return distinct == accepted
	})
	ls := lines(t, e.out, "probe")
	_, dups := checkOrder(t, ls)
	pids := map[int]bool{}
	for _, l := range ls {
		pids[l.PID] = true
	}
	if !pids[pid] || len(pids) < 2 {
		t.Fatalf("rows came from pids %v; want the killed %d and its successor", pids, pid)
	}
	t.Logf("%d rows accepted, all delivered in order per uuid across the kill of pid %d; %d duplicate deliveries", accepted, pid, dups)
}

func TestKilledGatewayLosesNothingAccepted(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_DELAY=1ms")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	cmd, base := runBinary(t, e.vars)
	waitFor(t, 60*time.Second, "the pusher to run", func() bool {
		r := call(t, http.MethodGet, base+"/plugins/probe", "")
		return strings.Contains(string(r.Body), `"running"`)
	})

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"uuid":"c%d","row":{"index":%d,"data":{"value":%d}}}`, c, i, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/data", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the gateway died mid-request: not accepted
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					accepted[fmt.Sprintf("c%d/%d", c, i)] = true
					mu.Unlock()
				}
			}
		})
	}
	waitFor(t, 60*time.Second, "some load", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 300
	})
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	// Restart on the same data dir: the spool is replayed.
	runBinary(t, e.vars)
	waitFor(t, 60*time.Second, "every row that got a 202 to be delivered", func() bool {
		got := map[string]bool{}
		for _, l := range lines(t, e.out, "probe") {
			got[rowKey(l)] = true
		}
		for k := range accepted {
			if !got[k] {
				return false
			}
		}
		return true
	})
	distinct, dups := checkOrder(t, lines(t, e.out, "probe"))
	t.Logf("%d rows got a 202 before SIGKILL; all delivered after restart (%d distinct rows delivered, %d duplicates)", len(accepted), distinct, dups)
}

func TestHangingPusherDelaysOnlyItself(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "hang")
	must(t, os.WriteFile(hang, nil, 0o600))
	e := newEnv(t, "MAX_BACKLOG=20", "PUSH_TIMEOUT=1m")
	e.vars = append(e.vars, "PLUGIN_STUCK_OUT="+e.out, "PLUGIN_STUCK_HANG_IF_EXISTS="+hang, "PLUGIN_FAST_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-stuck")
	install(t, "pusher-probe", e.plugins, "pusher-fast")
	svc, base := start(t, e.config(t))
	waitFor(t, 60*time.Second, "both pushers to run", func() bool {
		a, _ := svc.Plugins().Get("stuck")
		b, _ := svc.Plugins().Get("fast")
		return a.State == pluginmgr.StateRunning && b.State == pluginmgr.StateRunning
	})
	for i := range 15 {
		begin := time.Now()
		r := call(t, http.MethodPost, base+"/data", fmt.Sprintf(`{"uuid":"u%d","row":{"index":0,"data":{"v":%d}}}`, i, i))
		if r.Status != http.StatusAccepted {
			t.Fatalf("intake with a hung pusher: %d %s", r.Status, r.Body)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Fatalf("intake took %s with a hung pusher", d)
		}
	}
	waitFor(t, 60*time.Second, "the healthy pusher to deliver everything", func() bool { return len(lines(t, e.out, "fast")) == 15 })
	if n := len(lines(t, e.out, "stuck")); n != 0 {
		t.Fatalf("hung pusher delivered %d rows", n)
	}

	// Past the backlog limit, intake pushes back.
	var last response
	waitFor(t, 60*time.Second, "a 429 once the hung pusher's backlog passes 20", func() bool {
		last = call(t, http.MethodPost, base+"/data", `{"uuid":"more","row":{"data":{"v":1}}}`)
		return last.Status == http.StatusTooManyRequests
	})
	if last.Header.Get("Retry-After") == "" || !strings.Contains(string(last.Body), "stuck") {
		t.Fatalf("429 without Retry-After or without naming the pusher: %s", last.Body)
	}
}

func TestTwoGatewaysShareOnePostgresSpool(t *testing.T) {
	dbURL := postgresURL(t)
	out := t.TempDir()
	var bases []string
	for range 2 {
		e := newEnv(t, "DATABASE_URL="+dbURL, "PUSH_CONCURRENCY=4")
		e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+out, "PLUGIN_PROBE_DELAY=2ms")
		install(t, "pusher-probe", e.plugins, "pusher-probe")
		svc, base := start(t, e.config(t))
		waitFor(t, 60*time.Second, "the pusher to run", func() bool {
			st, _ := svc.Plugins().Get("probe")
			return st.State == pluginmgr.StateRunning
		})
		bases = append(bases, base)
	}
	const uuids, perUUID = 10, 40
	var wg sync.WaitGroup
	for i, base := range bases {
		wg.Go(func() {
			for u := i; u < uuids; u += 2 {
				for j := 0; j < perUUID; j++ {
					r := call(t, http.MethodPost, base+"/data", fmt.Sprintf(`{"uuid":"u%d","row":{"index":%d,"data":{"v":%d}}}`, u, j, j))
					if r.Status != http.StatusAccepted {
						t.Errorf("POST: %d %s", r.Status, r.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, 60*time.Second, "the shared spool to drain", func() bool { return len(lines(t, out, "probe")) >= uuids*perUUID })
	ls := lines(t, out, "probe")
	distinct, dups := checkOrder(t, ls)
	pids := map[int]int{}
	for _, l := range ls {
		pids[l.PID]++
	}
	if distinct != uuids*perUUID || dups != 0 {
		t.Fatalf("%d distinct rows, %d delivered twice; want %d once each", distinct, dups, uuids*perUUID)
	}
	t.Logf("rows pushed per pusher process: %v", pids)
}

func TestHungPusherIsRestartedAndItsTaskDelivered(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "hang")
	must(t, os.WriteFile(hang, nil, 0o600))
	e := newEnv(t, "PUSH_TIMEOUT=1s")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_HANG_IF_EXISTS="+hang)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	before, _ := svc.Plugins().Get("probe")
	if r := call(t, http.MethodPost, base+"/data", `{"uuid":"stuck","row":{"index":0,"data":{"v":1}}}`); r.Status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	waitFor(t, 60*time.Second, "the hung pusher to be restarted", func() bool {
		st, _ := svc.Plugins().Get("probe")
		return st.Restarts >= 1 && st.PID != before.PID && st.State == pluginmgr.StateRunning
	})
	if alive := syscall.Kill(before.PID, 0) == nil; alive {
		// A zombie may linger until reaped; a live process must not.
		if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", before.PID)); !strings.Contains(string(data), ") Z") {
			t.Fatalf("hung process %d still running", before.PID)
		}
	}
	must(t, os.Remove(hang))
	waitFor(t, 60*time.Second, "the task delivered after the restart", func() bool { return len(lines(t, e.out, "probe")) == 1 })
	m := metricstest.Scrape(t, base+"/metrics", "")
	if timeouts, restarts := m.Must(t, "routing_tasks_total", "pusher", "probe", "outcome", "timeout"), m.Must(t, "routing_plugin_restarts_total", "plugin", "probe"); timeouts < 1 || restarts < 1 {
		t.Fatalf("metrics: tasks_total{outcome=timeout} %v, plugin_restarts_total %v; want both >= 1", timeouts, restarts)
	}
}

func TestTokensGuardEveryNonPublicEndpoint(t *testing.T) {
	const dataToken, adminToken = "data-token-0123456789", "admin-token-0123456789"
	e := newEnv(t, "API_TOKENS="+dataToken, "ADMIN_TOKENS="+adminToken)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	row := `{"uuid":"u1","row":{"index":0,"data":{"v":1}}}`
	tests := []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/", "", "", 200},
		{"POST", "/data", "", row, 401},
		{"POST", "/data", "wrong-token-0123456789", row, 401},
		{"POST", "/data", dataToken, row, 202},
		{"POST", "/data/batch", "", `{"uuid":"u1","rows":[]}`, 401},
		{"GET", "/data/1", dataToken, "", 200},
		{"GET", "/data/1", "", "", 401},
		{"GET", "/deadletters", dataToken, "", 403},
		{"GET", "/deadletters", adminToken, "", 200},
		{"POST", "/deadletters/1/retry", dataToken, "", 403},
		{"POST", "/deadletters/999/retry", adminToken, "", 404},
		{"GET", "/plugins", "", "", 401},
		{"GET", "/plugins", dataToken, "", 403},
		{"POST", "/plugins/probe/restart", dataToken, "", 403},
		{"GET", "/plugins/probe", adminToken, "", 200},
		{"GET", "/metrics", dataToken, "", 403},
		{"GET", "/metrics", adminToken, "", 200},
		{"GET", "/status", dataToken, "", 403},
		{"GET", "/status", adminToken, "", 200},
		{"POST", "/data", adminToken, row, 202},
	}
	for _, tt := range tests {
		if got := testkit.Status(t, tt.method, base+tt.path, tt.token, tt.body); got != tt.want {
			t.Errorf("%s %s with %q: %d, want %d", tt.method, tt.path, tt.token, got, tt.want)
		}
	}
}

func TestBacklogIsPushedInBatchesAndABadRowFailsAlone(t *testing.T) {
	e := newEnv(t, "PUSH_BATCH_ROWS=50")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_DELAY=200ms", "PLUGIN_PROBE_REJECT_KEY=bad")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	// Twenty single-row requests for one uuid queue up behind the first
	// push (each takes 200 ms); request 12 carries a row the pusher rejects.
	var badID int64
	for i := range 20 {
		data := `{"v":1}`
		if i == 12 {
			data = `{"bad":true}`
		}
		var acc spool.Accepted
		r := call(t, http.MethodPost, base+"/data", fmt.Sprintf(`{"uuid":"line","row":{"index":%d,"data":%s}}`, i, data))
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, r.Status, r.Body)
		}
		r.JSON(t, &acc)
		if i == 12 {
			badID = acc.ID
		}
	}
	waitFor(t, 60*time.Second, "19 rows delivered", func() bool { return len(lines(t, e.out, "probe")) >= 19 })
	var dead struct{ DeadLetters []spool.TaskStatus }
	waitFor(t, 30*time.Second, "the bad row dead-lettered", func() bool {
		call(t, http.MethodGet, base+"/deadletters?uuid=line", "").JSON(t, &dead)
		return len(dead.DeadLetters) == 1
	})
	if d := dead.DeadLetters[0]; d.DeliveryID != badID || d.Attempts != 1 {
		t.Fatalf("dead letter %+v, want delivery %d after one attempt of its own", d, badID)
	}
	ls := lines(t, e.out, "probe")
	if len(ls) != 19 {
		t.Fatalf("%d rows delivered, want 19", len(ls))
	}
	batched := false
	for i, l := range ls {
		want := i
		if i >= 12 {
			want = i + 1 // the rejected row is skipped, the order kept
		}
		if *l.Index != want {
			t.Fatalf("row %d has index %d, want %d: order broken", i, *l.Index, want)
		}
		batched = batched || l.Batch > 1
	}
	if !batched {
		t.Fatal("no Push carried more than one row: the backlog was not batched")
	}
}
