package datagateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/metrics/metricstest"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/spool"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// waitState waits until the named plugin is in state.
func waitState(tb testing.TB, svc *datagateway.Service, name string, state pluginmgr.State) {
	tb.Helper()
	waitFor(tb, 60*time.Second, name+" to be "+string(state), func() bool {
		st, err := svc.Plugins().Get(name)
		return err == nil && st.State == state
	})
}

// postRow posts one row for uuid and returns the answer.
func postRow(tb testing.TB, base, uuid string, index int, data string) response {
	tb.Helper()
	return call(tb, http.MethodPost, base+"/data", fmt.Sprintf(`{"uuid":%q,"row":{"index":%d,"data":%s}}`, uuid, index, data))
}

// checkDelivered fails unless the probe instance received exactly the
// rows of uuid with indexes 0..n-1, once each, in order, with data as
// want(i) byte for byte.
func checkDelivered(tb testing.TB, out, instance, uuid string, n int, want func(i int) string) {
	tb.Helper()
	var got []line
	for _, l := range lines(tb, out, instance) {
		if l.UUID == uuid {
			got = append(got, l)
		}
	}
	if len(got) != n {
		tb.Fatalf("%s received %d rows of %s, want %d", instance, len(got), uuid, n)
	}
	for i, l := range got {
		if l.Index == nil || *l.Index != i {
			tb.Fatalf("%s: row %d of %s has index %v: not in order, or twice", instance, i, uuid, l.Index)
		}
		if string(l.Data) != want(i) {
			tb.Fatalf("%s: row %d of %s is %s, want %s", instance, i, uuid, l.Data, want(i))
		}
	}
}

func valueRow(i int) string { return fmt.Sprintf(`{"value":%d,"note":"row %d"}`, i, i) }

// A pusher that cannot start (a script that prints a line and exits 3)
// ends failed: intake keeps answering 202 although MAX_BACKLOG is 5, the
// healthy pusher delivers, and the failed one's rows are kept and
// delivered once its file is fixed.
func TestFailedPusherDoesNotStopIntake(t *testing.T) {
	e := newEnv(t, "MAX_BACKLOG=5", "PLUGINS_MIN_BACKOFF=10ms", "PLUGINS_MAX_BACKOFF=50ms")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_NOISY_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	tmp := filepath.Join(e.plugins, ".pusher-noisy.tmp")
	must(t, os.WriteFile(tmp, []byte("#!/bin/sh\necho 'noisy: no destination configured'\nexit 3\n"), 0o755))
	must(t, os.Rename(tmp, filepath.Join(e.plugins, "pusher-noisy")))
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	waitState(t, svc, "noisy", pluginmgr.StateFailed)

	const n = 20
	var last spool.Accepted
	for i := range n {
		r := postRow(t, base, "run", i, valueRow(i))
		for r.Status == http.StatusTooManyRequests && strings.Contains(string(r.Body), "for probe ") {
			// The healthy pusher's own backlog may fill on a loaded machine:
			// that 429 is right; the failed pusher's backlog must never
			// cause one. Retry once the healthy one caught up, as a client
			// told Retry-After would.
			waitFor(t, 30*time.Second, "the healthy pusher to catch up", func() bool {
				return metricstest.Scrape(t, base+"/metrics", "").Must(t, "routing_backlog_tasks", "pusher", "probe") < 5
			})
			r = postRow(t, base, "run", i, valueRow(i))
		}
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST %d with a failed pusher: %d %s", i, r.Status, r.Body)
		}
		r.JSON(t, &last)
		if strings.Join(last.Pushers, ",") != "noisy,probe" {
			t.Fatalf("pushers %v: the failed pusher must get its tasks too", last.Pushers)
		}
	}
	waitFor(t, 60*time.Second, "the healthy pusher to deliver every row", func() bool { return len(lines(t, e.out, "probe")) >= n })
	checkDelivered(t, e.out, "probe", "run", n, valueRow)
	var status spool.DeliveryStatus
	call(t, http.MethodGet, fmt.Sprintf("%s/data/%d", base, last.ID), "").JSON(t, &status)
	if len(status.Pushers) != 2 || status.Pushers[0].Pusher != "noisy" || status.Pushers[0].State != "pending" {
		t.Fatalf("status of the last delivery: %+v, want noisy pending", status.Pushers)
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if b := m.Must(t, "routing_backlog_tasks", "pusher", "noisy"); b != n {
		t.Fatalf("noisy's backlog %v, want %d", b, n)
	}
	if st, _ := svc.Plugins().Get("noisy"); st.State != pluginmgr.StateFailed {
		t.Fatalf("noisy is %s, want still failed", st.State)
	}

	// Fixed: the file is replaced by a working pusher, which restarts it.
	install(t, "pusher-probe", e.plugins, "pusher-noisy")
	waitFor(t, 60*time.Second, "the fixed pusher to catch up", func() bool { return len(lines(t, e.out, "noisy")) >= n })
	checkDelivered(t, e.out, "noisy", "run", n, valueRow)
	waitFor(t, 10*time.Second, "the last delivery to show delivered twice", func() bool {
		call(t, http.MethodGet, fmt.Sprintf("%s/data/%d", base, last.ID), "").JSON(t, &status)
		return status.Pushers[0].State == "delivered" && status.Pushers[1].State == "delivered"
	})
}

// A stop is a pause: the stopped pusher gets a task for every request
// (beyond MAX_BACKLOG, since it does not push back) and catches up with
// all of them once started.
func TestStoppedPusherCatchesUpAfterStart(t *testing.T) {
	e := newEnv(t, "MAX_BACKLOG=5")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	for i := range 3 {
		if r := postRow(t, base, "paused", i, valueRow(i)); r.Status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, r.Status, r.Body)
		}
	}
	waitFor(t, 30*time.Second, "the first rows delivered", func() bool { return len(lines(t, e.out, "probe")) == 3 })
	// A push's outcome is recorded after the plugin answered: the backlog
	// counts from zero once it is.
	waitFor(t, 30*time.Second, "the first outcomes recorded", func() bool {
		return metricstest.Scrape(t, base+"/metrics", "").Must(t, "routing_backlog_tasks", "pusher", "probe") == 0
	})

	if r := call(t, http.MethodPost, base+"/plugins/probe/stop", ""); r.Status >= 300 {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	waitState(t, svc, "probe", pluginmgr.StateStopped)
	const n = 15
	for i := 3; i < n; i++ {
		r := postRow(t, base, "paused", i, valueRow(i))
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST %d while the pusher is stopped: %d %s", i, r.Status, r.Body)
		}
		var acc spool.Accepted
		r.JSON(t, &acc)
		if len(acc.Pushers) != 1 || acc.Pushers[0] != "probe" {
			t.Fatalf("pushers %v: a stopped pusher must get its tasks", acc.Pushers)
		}
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if b := m.Must(t, "routing_backlog_tasks", "pusher", "probe"); b != n-3 {
		t.Fatalf("backlog while stopped: %v, want %d", b, n-3)
	}
	if got := len(lines(t, e.out, "probe")); got != 3 {
		t.Fatalf("a stopped pusher delivered: %d rows", got)
	}

	if r := call(t, http.MethodPost, base+"/plugins/probe/start", ""); r.Status >= 300 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	waitFor(t, 60*time.Second, "the started pusher to catch up", func() bool { return len(lines(t, e.out, "probe")) >= n })
	checkDelivered(t, e.out, "probe", "paused", n, valueRow)
}

// MAX_SPOOL_BYTES bounds the rows kept for undelivered tasks: with a
// pusher stopped, requests are taken until their rows would pass it, then
// refused with a 507 problem that names the variable and what to do; once
// the pusher caught up, the space is free again.
func TestFullSpoolAnswers507(t *testing.T) {
	const budget = 4096
	e := newEnv(t, "MAX_BODY_BYTES=2048", fmt.Sprintf("MAX_SPOOL_BYTES=%d", budget))
	e.vars = append(e.vars, "PLUGIN_FAST_OUT="+e.out, "PLUGIN_LATER_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-fast")
	install(t, "pusher-probe", e.plugins, "pusher-later")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "fast")
	waitRunning(t, svc, "later")
	must(t, svc.Plugins().Stop(t.Context(), "later"))
	waitState(t, svc, "later", pluginmgr.StateStopped)

	row := func(i int) string { return fmt.Sprintf(`{"value":%d,"text":"%s"}`, i, strings.Repeat("x", 500)) }
	// What each request's rows take in the spool, and how many fit.
	size := func(i int) int {
		var r sdk.Row
		must(t, json.Unmarshal(fmt.Appendf(nil, `{"index":%d,"data":%s}`, i, row(i)), &r))
		encoded, err := pluginhost.EncodeRows([]sdk.Row{r})
		must(t, err)
		return len(encoded)
	}
	want, used := 0, 0
	for used+size(want) <= budget {
		used += size(want)
		want++
	}

	accepted := 0
	var refused response
	for i := 0; i < 20; i++ {
		r := postRow(t, base, "full", i, row(i))
		if r.Status != http.StatusAccepted {
			refused = r
			break
		}
		accepted++
	}
	if accepted != want || refused.Status != http.StatusInsufficientStorage {
		t.Fatalf("%d requests taken, then %d %s; want %d taken (%d bytes of %d), then 507", accepted, refused.Status, refused.Body, want, used, budget)
	}
	var p struct {
		Status int
		Detail string
	}
	refused.JSON(t, &p)
	if refused.Header.Get("Content-Type") != "application/problem+json" || p.Status != 507 || refused.Header.Get("Retry-After") == "" ||
		!strings.Contains(p.Detail, fmt.Sprintf("MAX_SPOOL_BYTES=%d", budget)) || !strings.Contains(p.Detail, "later (stopped, ") || !strings.Contains(p.Detail, "start") {
		t.Fatalf("507 problem: %v %s (want MAX_SPOOL_BYTES, its value, the stopped pusher and what to do)", refused.Header, refused.Body)
	}
	t.Logf("507 detail: %s", p.Detail)
	waitFor(t, 30*time.Second, "the running pusher to deliver what was taken", func() bool { return len(lines(t, e.out, "fast")) >= accepted })
	m := metricstest.Scrape(t, base+"/metrics", "")
	if b := m.Must(t, "routing_spool_bytes"); b != float64(used) {
		t.Fatalf("spool_bytes %v, want %d (the rows the stopped pusher waits for)", b, used)
	}

	must(t, svc.Plugins().Start(t.Context(), "later"))
	waitFor(t, 60*time.Second, "the started pusher to catch up", func() bool { return len(lines(t, e.out, "later")) >= accepted })
	checkDelivered(t, e.out, "later", "full", accepted, row)
	waitFor(t, 10*time.Second, "the spool to be empty", func() bool {
		return metricstest.Scrape(t, base+"/metrics", "").Must(t, "routing_spool_bytes") == 0
	})
	if r := postRow(t, base, "full", accepted, row(accepted)); r.Status != http.StatusAccepted {
		t.Fatalf("POST once the spool was freed: %d %s", r.Status, r.Body)
	}
}

// With MAX_BACKLOG=5 and a pusher that takes tasks but never delivers,
// concurrent requests never leave it more than 5 pending tasks.
func TestBacklogLimitHoldsUnderConcurrentRequests(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			hang := filepath.Join(t.TempDir(), "hang")
			must(t, os.WriteFile(hang, nil, 0o600))
			e := newEnv(t, "MAX_BACKLOG=5", "PUSH_TIMEOUT=5m")
			if backend == "postgres" {
				e.vars = append(e.vars, "DATABASE_URL="+postgresURL(t))
			}
			e.vars = append(e.vars, "PLUGIN_STUCK_OUT="+e.out, "PLUGIN_STUCK_HANG_IF_EXISTS="+hang)
			install(t, "pusher-probe", e.plugins, "pusher-stuck")
			svc, base := start(t, e.config(t))
			waitRunning(t, svc, "stuck")

			backlog := func() float64 {
				return metricstest.Scrape(t, base+"/metrics", "").Must(t, "routing_backlog_tasks", "pusher", "stuck")
			}
			total := 0
			for round := range 3 {
				var (
					wg                 sync.WaitGroup
					mu                 sync.Mutex
					accepted, tooMany  int
					unexpected         []string
					startLine          = make(chan struct{})
					concurrentRequests = 20
				)
				for i := range concurrentRequests {
					wg.Go(func() {
						<-startLine
						r := postRow(t, base, fmt.Sprintf("c%d-%d", round, i), 0, `{"v":1}`)
						mu.Lock()
						defer mu.Unlock()
						switch r.Status {
						case http.StatusAccepted:
							accepted++
						case http.StatusTooManyRequests:
							tooMany++
						default:
							unexpected = append(unexpected, fmt.Sprintf("%d %s", r.Status, r.Body))
						}
					})
				}
				close(startLine)
				wg.Wait()
				total += accepted
				if len(unexpected) > 0 || total > 5 {
					t.Fatalf("round %d: %d taken (%d in all), %d refused with 429, others: %v; want at most 5 in all", round, accepted, total, tooMany, unexpected)
				}
				if b := backlog(); b != float64(total) || b > 5 {
					t.Fatalf("round %d: backlog %v, want %d (at most 5)", round, b, total)
				}
				t.Logf("round %d: %d of %d concurrent requests taken, %d refused with 429", round, accepted, concurrentRequests, tooMany)
			}
			// Sequential requests fill the backlog up to the limit exactly.
			for i := 0; ; i++ {
				r := postRow(t, base, "seq", i, `{"v":1}`)
				if r.Status == http.StatusTooManyRequests {
					if !strings.Contains(string(r.Body), "stuck (5 pending)") || r.Header.Get("Retry-After") == "" {
						t.Fatalf("429: %v %s", r.Header, r.Body)
					}
					break
				}
				if r.Status != http.StatusAccepted || i > 5 {
					t.Fatalf("sequential POST %d: %d %s", i, r.Status, r.Body)
				}
			}
			if b := backlog(); b != 5 {
				t.Fatalf("backlog %v, want exactly 5", b)
			}
		})
	}
}

// Removing a pusher's file dead-letters its pending tasks with a reason
// that says so; once it is installed again they can be retried.
func TestRemovedPusherTasksAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_KEEP_OUT="+e.out, "PLUGIN_GONE_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-keep")
	install(t, "pusher-probe", e.plugins, "pusher-gone")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "keep")
	waitRunning(t, svc, "gone")
	must(t, svc.Plugins().Stop(t.Context(), "gone"))
	waitState(t, svc, "gone", pluginmgr.StateStopped)
	const n = 4
	for i := range n {
		if r := postRow(t, base, "orphan", i, valueRow(i)); r.Status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", i, r.Status, r.Body)
		}
	}
	waitFor(t, 30*time.Second, "the other pusher to deliver", func() bool { return len(lines(t, e.out, "keep")) >= n })

	must(t, os.Remove(filepath.Join(e.plugins, "pusher-gone")))
	var dead struct{ DeadLetters []spool.TaskStatus }
	waitFor(t, 30*time.Second, "the removed pusher's tasks dead-lettered", func() bool {
		call(t, http.MethodGet, base+"/deadletters?pusher=gone", "").JSON(t, &dead)
		return len(dead.DeadLetters) == n
	})
	for _, d := range dead.DeadLetters {
		if !strings.Contains(d.LastError, "pusher gone was removed") || d.Attempts != 0 {
			t.Fatalf("dead letter %+v: want the removal as its reason, no attempt counted", d)
		}
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if b := m.Must(t, "routing_spool_bytes"); b != 0 {
		t.Fatalf("spool_bytes %v after the removal, want 0", b)
	}

	install(t, "pusher-probe", e.plugins, "pusher-gone")
	waitRunning(t, svc, "gone")
	for i := len(dead.DeadLetters) - 1; i >= 0; i-- { // oldest first
		if r := call(t, http.MethodPost, fmt.Sprintf("%s/deadletters/%d/retry", base, dead.DeadLetters[i].ID), ""); r.Status != http.StatusAccepted {
			t.Fatalf("retry: %d %s", r.Status, r.Body)
		}
	}
	waitFor(t, 30*time.Second, "the retried tasks delivered", func() bool { return len(lines(t, e.out, "gone")) >= n })
	checkDelivered(t, e.out, "gone", "orphan", n, valueRow)
}

// No Push passes the plugin protocol's message limit (lowered here to
// 64 KiB): queued requests are coalesced only while they fit, and a
// request whose rows alone pass the limit reaches the pusher in
// consecutive parts. Every row arrives once, in order, byte for byte.
func TestLargeRequestsArePushedWithinTheMessageLimit(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t)
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_DELAY=100ms")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	cfg := e.config(t)
	cfg.MaxPushBytes = limit
	svc, base := start(t, cfg)
	waitRunning(t, svc, "probe")

	// Request sizes in rows of about 2 kB: the second is 200 kB, the
	// others queue up behind the first push (each push takes 100 ms).
	sizes := []int{5, 100, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 1, 1, 1}
	var want []string
	reqOf := map[int]int{}
	for r, n := range sizes {
		var rows []string
		for range n {
			i := len(want)
			data := fmt.Sprintf(`{"i":%d,"req":%d,"text":"%s","note":"\u00b5 \"q\" µ","x":1.50}`, i, r, strings.Repeat(string(rune('a'+i%26)), 2000))
			rows, want = append(rows, fmt.Sprintf(`{"index":%d,"data":%s}`, i, data)), append(want, data)
			reqOf[i] = r
		}
		if res := call(t, http.MethodPost, base+"/data/batch", `{"uuid":"large","rows":[`+strings.Join(rows, ",")+`]}`); res.Status != http.StatusAccepted {
			t.Fatalf("POST %d: %d %s", r, res.Status, res.Body)
		}
	}
	waitFor(t, 60*time.Second, "every row delivered", func() bool { return len(lines(t, e.out, "probe")) >= len(want) })
	ls := lines(t, e.out, "probe")
	if len(ls) != len(want) {
		t.Fatalf("%d rows delivered, want %d once each", len(ls), len(want))
	}
	perPush := map[int64]map[int]bool{} // push -> requests it carried
	largest := 0
	for i, l := range ls {
		if *l.Index != i || string(l.Data) != want[i] {
			t.Fatalf("row %d: index %d, data %.80s; want index %d, data %.80s", i, *l.Index, l.Data, i, want[i])
		}
		if l.Bytes > limit {
			t.Fatalf("push %d carried %d bytes, over the limit of %d", l.Push, l.Bytes, limit)
		}
		largest = max(largest, l.Bytes)
		if perPush[l.Push] == nil {
			perPush[l.Push] = map[int]bool{}
		}
		perPush[l.Push][reqOf[i]] = true
	}
	partsOfLarge, coalesced := 0, 0
	for _, reqs := range perPush {
		if reqs[1] {
			partsOfLarge++
		}
		if len(reqs) > 1 {
			coalesced++
		}
	}
	if partsOfLarge < 4 || coalesced == 0 {
		t.Fatalf("the 200 kB request went in %d pushes (want 4 or more); %d pushes carried several requests (want some)", partsOfLarge, coalesced)
	}
	t.Logf("%d rows in %d pushes of at most %d bytes (limit %d); the 200 kB request in %d parts, %d pushes coalesced several requests",
		len(ls), len(perPush), largest, limit, partsOfLarge, coalesced)
}

func TestMaxSpoolBytesIsCheckedAtStart(t *testing.T) {
	for _, v := range []string{"0", "-5", "16777215", "1GiB"} {
		var cfg datagateway.Config
		err := config.Load(&cfg, []string{"MAX_SPOOL_BYTES=" + v})
		if err == nil || !strings.Contains(err.Error(), "MAX_SPOOL_BYTES=") || strings.Contains(err.Error(), "\n") {
			t.Errorf("MAX_SPOOL_BYTES=%s: %v; want a one-line error naming the variable", v, err)
		}
	}
	var cfg datagateway.Config
	must(t, config.Load(&cfg, nil))
	if cfg.MaxSpoolBytes != 1<<30 {
		t.Fatalf("default MAX_SPOOL_BYTES %d, want 1 GiB", cfg.MaxSpoolBytes)
	}
	must(t, config.Load(&cfg, []string{"MAX_SPOOL_BYTES=16777216"}))
}

// Rows that take more bytes as stored than the whole spool may hold could
// never be taken: 413, not a 507 that would be retried for ever.
func TestRowsLargerThanTheSpoolAre413(t *testing.T) {
	e := newEnv(t, "MAX_BODY_BYTES=2048", "MAX_SPOOL_BYTES=2048")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	// Short keys and values grow when encoded: 1.9 kB of JSON, 2.7 kB stored.
	var fields []string
	for i := 0; len(strings.Join(fields, ",")) < 1900; i++ {
		fields = append(fields, fmt.Sprintf(`"k%d":1`, i))
	}
	r := call(t, http.MethodPost, base+"/data", `{"uuid":"wide","row":{"data":{`+strings.Join(fields, ",")+`}}}`)
	if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.Body), "MAX_SPOOL_BYTES=2048") {
		t.Fatalf("rows larger than the spool: %d %s", r.Status, r.Body)
	}
}
