package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const rowsPerRequest = 100

// maxBacklogAge is the gateway's MAX_BACKLOG_AGE under the bench's load.
const maxBacklogAge = "500ms"

func serviceEnv(o options, dir, plugins string, extra ...string) []string {
	if o.databaseURL != "" {
		extra = append(extra, "DATABASE_URL="+o.databaseURL)
	}
	return append([]string{
		"SERVER_PORT=0",
		"DATA_DIR=" + dir,
		"PLUGINS_DIR=" + plugins,
		"ADMIN_TOKENS=" + adminToken,
		"PATH=" + os.Getenv("PATH"),
	}, extra...)
}

func installPlugin(src, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o755)
}

// waitUntil polls cond every 5 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// gatewayRun measures intake against the decode-only baseline and the
// peer (Benthos) under the same load, delivery end to end to pusher-jsonl
// (its files on tmpfs), memory, and a pusher's restart.
func gatewayRun(ctx context.Context, o options, bins map[string]string, dir string, res results) error {
	bodies := dataBodies(64, rowsPerRequest)

	baseURL, stop := decodeOnlyServer(http.StatusAccepted, func() any {
		return new(struct {
			UUID string `json:"uuid"`
			Rows []struct {
				Index *int           `json:"index"`
				Data  map[string]any `json:"data"`
			} `json:"rows"`
		})
	})
	base := load(ctx, baseURL+"/data/batch", "", bodies, o.conns, o.duration, http.StatusAccepted)
	stop()
	if base.OK == 0 {
		return fmt.Errorf("baseline: nothing accepted: %s", base.FirstError)
	}
	res.add("intake.base", base.perSecond()*rowsPerRequest)
	res.add("intake.base.p50", ms(base.percentile(0.50)))
	res.add("intake.base.p99", ms(base.percentile(0.99)))

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := peerRun(ctx, o, bins["benthos"], dir, bodies, res); err != nil {
		return err
	}

	plugins := filepath.Join(dir, "gateway-plugins")
	if err := installPlugin(bins["pusher-jsonl"], plugins, "pusher-jsonl"); err != nil {
		return err
	}
	out := outputDir(dir, "gateway-out")
	defer os.RemoveAll(out)
	// Intake answers 429 once delivery is half a second behind: the lag
	// after the load stays under a second even where delivery cannot keep
	// up (the default, 5s, allows more).
	env := []string{"PLUGIN_JSONL_DIR=" + out, "DEBUG_ADDR=" + gatewayDebugAddr, "MAX_BACKLOG_AGE=" + maxBacklogAge}
	svc, err := startService(bins["data-gateway"], serviceEnv(o, filepath.Join(dir, "gateway"), plugins, env...), filepath.Join(dir, "data-gateway.log"))
	if err != nil {
		return err
	}
	defer svc.stop()
	plugin, err := svc.waitPlugin("jsonl", 0, 30*time.Second)
	if err != nil {
		return err
	}
	idle, _ := memory(svc.pid())
	pluginIdle, _ := memory(plugin.PID)
	res.add("mem.gateway.idle", idle)
	res.add("mem.pusher.idle", pluginIdle)

	before := svc.counters(gatewayDebugAddr)
	stopProfile := profileDuring(o, gatewayDebugAddr, "data-gateway", o.duration)
	r := load(ctx, svc.base+"/data/batch", adminToken, bodies, o.conns, o.duration, http.StatusAccepted)
	loadEnd := time.Now()
	stopProfile()
	if r.OK == 0 {
		return fmt.Errorf("intake: nothing accepted: %s", r.FirstError)
	}
	if r.Failed > r.Refused {
		fmt.Fprintf(os.Stderr, "bench: %d intake requests failed, first: %s\n", r.Failed-r.Refused, r.FirstError)
	}
	res.add("intake", r.perSecond()*rowsPerRequest)
	res.add("intake.p50", ms(r.percentile(0.50)))
	res.add("intake.p99", ms(r.percentile(0.99)))
	res.add("intake.failed", float64(r.Failed-r.Refused))
	res.add("intake.refused", float64(r.Refused))

	lines := newLineCounter(out)
	want := int64(r.OK * rowsPerRequest)
	if err := waitUntil(5*time.Minute, "the accepted rows to be written", func() bool { return lines.count() >= want }); err != nil {
		return err
	}
	lag := time.Since(loadEnd)
	res.add("delivery", float64(want)/(r.Elapsed+lag).Seconds())
	res.add("delivery.lag", lag.Seconds())
	if err := waitUntil(time.Minute, "the backlog to be recorded as drained", func() bool {
		var s struct {
			Summary struct {
				Backlog map[string]int `json:"backlog"`
			} `json:"summary"`
		}
		return svc.get("/status", &s) == nil && s.Summary.Backlog["jsonl"] == 0
	}); err != nil {
		return err
	}
	after := svc.counters(gatewayDebugAddr)
	if after.busy > before.busy {
		res.add("store.writer_busy", (after.busy-before.busy)/1e6/(r.Elapsed+lag).Seconds())
	}
	if pushes := after.pushes - before.pushes; pushes > 0 {
		res.add("store.pushes", pushes)
		res.add("store.tx_per_push", (after.transactions-before.transactions)/pushes)
		res.add("store.writes_per_push", (after.writes-before.writes)/pushes)
		res.add("store.rows_per_push", float64(want)/pushes)
	}
	_, peak := memory(svc.pid())
	_, pluginPeak := memory(plugin.PID)
	res.add("mem.gateway.peak", peak)
	res.add("mem.pusher.peak", pluginPeak)

	// Restart: kill -9 the pusher, post a row at once, and time the new
	// process's start and that row's delivery.
	killed := time.Now()
	if err := syscall.Kill(plugin.PID, syscall.SIGKILL); err != nil {
		return err
	}
	id, err := postRow(svc.base)
	if err != nil {
		return err
	}
	if _, err := svc.waitPlugin("jsonl", plugin.PID, 30*time.Second); err != nil {
		return err
	}
	res.add("restart.running", ms(time.Since(killed)))
	if err := waitUntil(30*time.Second, "the row posted after the kill to be delivered", func() bool {
		var d struct {
			Pushers []struct {
				State string `json:"state"`
			} `json:"pushers"`
		}
		return svc.get(fmt.Sprintf("/data/%d", id), &d) == nil && len(d.Pushers) == 1 && d.Pushers[0].State == "delivered"
	}); err != nil {
		return err
	}
	res.add("restart.push", ms(time.Since(killed)))
	return nil
}

func postRow(base string) (int64, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/data", strings.NewReader(`{"uuid":"restart","row":{"index":0,"data":{"od600":0.5}}}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var acc struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil || resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("POST /data after the kill: %d %v", resp.StatusCode, err)
	}
	return acc.ID, nil
}

// towerRun measures a watcher's burst from Emit to broker confirm against
// a raw confirming publisher, and POST /triggers against decode-only.
func towerRun(ctx context.Context, o options, bins map[string]string, dir string, run int, res results) error {
	exchange := fmt.Sprintf("bench-%d-%d", os.Getpid(), run)
	defer deleteExchange(o.amqpURL, exchange)
	// The body the control-tower publishes for a burst trigger.
	body := []byte(`{"uuid":"0123456789abcdef","apiVersion":"OT-2/v1alpha1/Bench","protocol":"Burst","spec":{"mix":true,"volume":150,"wells":96},"metadata":{"source":"watcher"}}`)
	rawRate, err := rawPublish(o.amqpURL, exchange, body, o.triggers, 100)
	if err != nil {
		return fmt.Errorf("raw publisher: %w", err)
	}
	res.add("publish.base", rawRate)

	plugins := filepath.Join(dir, "tower-plugins")
	if err := installPlugin(bins["watcher-burst"], plugins, "watcher-burst"); err != nil {
		return err
	}
	goFile := filepath.Join(dir, "go")
	env := []string{
		"AMQP_URL=" + o.amqpURL, "AMQP_EXCHANGE=" + exchange, "PLUGIN_BURST_GO_FILE=" + goFile,
		fmt.Sprintf("PLUGIN_BURST_COUNT=%d", o.triggers), fmt.Sprintf("PLUGIN_BURST_RUN=%d", run),
		"DEBUG_ADDR=" + towerDebugAddr,
	}
	svc, err := startService(bins["control-tower"], serviceEnv(o, filepath.Join(dir, "tower"), plugins, env...), filepath.Join(dir, "control-tower.log"))
	if err != nil {
		return err
	}
	defer svc.stop()
	if _, err := svc.waitPlugin("burst", 0, 30*time.Second); err != nil {
		return err
	}
	if err := waitUntil(30*time.Second, "the broker connection", func() bool {
		v, err := svc.metric("routing_broker_connected", nil)
		return err == nil && v == 1
	}); err != nil {
		return err
	}
	idle, _ := memory(svc.pid())
	res.add("mem.tower.idle", idle)
	before := svc.counters(towerDebugAddr)
	cpuBefore := cpuSeconds(svc.pid())
	start := time.Now()
	stopProfile := profileDuring(o, towerDebugAddr, "control-tower", time.Second)
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		return err
	}
	var stored time.Duration
	if err := waitUntil(5*time.Minute, "every emitted trigger to be confirmed", func() bool {
		// One scrape per poll: each costs the control-tower CPU the
		// burst is measured with.
		fams, err := svc.scrape()
		if err != nil {
			return false
		}
		if stored == 0 && fams.sum("routing_triggers_received_total", map[string]string{"source": "watcher", "result": "created"}) >= float64(o.triggers) {
			stored = time.Since(start)
		}
		published := fams.sum("routing_triggers_published_total", map[string]string{"outcome": "published"})
		unroutable := fams.sum("routing_triggers_published_total", map[string]string{"outcome": "unroutable"})
		return published+unroutable >= float64(o.triggers)
	}); err != nil {
		return err
	}
	burst := time.Since(start)
	res.add("publish", float64(o.triggers)/burst.Seconds())
	res.add("publish.cpu", (cpuSeconds(svc.pid())-cpuBefore)*1e6/float64(o.triggers))
	if after := svc.counters(towerDebugAddr); after.busy > before.busy {
		res.add("publish.writer_busy", (after.busy-before.busy)/1e6/burst.Seconds())
		res.add("publish.tx", (after.transactions-before.transactions)/float64(o.triggers))
	}
	if stored > 0 {
		res.add("publish.stored", float64(o.triggers)/stored.Seconds())
	}
	stopProfile()

	bodies := triggerBodies(1000)
	baseURL, stop := decodeOnlyServer(http.StatusCreated, func() any { return new(map[string]any) })
	base := load(ctx, baseURL+"/triggers", "", bodies, o.conns, o.duration/2, http.StatusCreated)
	stop()
	res.add("post.base", base.perSecond())
	stopProfile = profileDuring(o, towerDebugAddr, "control-tower-post", o.duration/2)
	cpuBefore = cpuSeconds(svc.pid())
	r := load(ctx, svc.base+"/triggers", adminToken, bodies, o.conns, o.duration/2, http.StatusCreated)
	cpuPost := cpuSeconds(svc.pid()) - cpuBefore
	stopProfile()
	if r.OK == 0 {
		return fmt.Errorf("POST /triggers: nothing created: %s", r.FirstError)
	}
	res.add("post", r.perSecond())
	res.add("post.cpu", cpuPost*1e6/float64(r.OK))
	res.add("post.p99", ms(r.percentile(0.99)))
	_, peak := memory(svc.pid())
	res.add("mem.tower.peak", peak)
	return nil
}

// rawPublish publishes n messages with confirms, inflight at a time, the
// way an application using amqp091-go directly would, and returns the
// rate of confirmed messages.
func rawPublish(url, exchange string, body []byte, n, inflight int) (float64, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return 0, err
	}
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	ctx := context.Background()
	start := time.Now()
	pending := make([]*amqp.DeferredConfirmation, 0, inflight)
	for i := range n {
		if len(pending) == inflight {
			if !pending[0].Wait() {
				return 0, fmt.Errorf("message nacked")
			}
			pending = pending[1:]
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "OT-2.v1alpha1.Bench", true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i), Body: bytes.Clone(body),
		})
		if err != nil {
			return 0, err
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		if !dc.Wait() {
			return 0, fmt.Errorf("message nacked")
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func deleteExchange(url, exchange string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(exchange, false, false)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Profiler addresses of the services (DEBUG_ADDR): profiles with
// -profile, the store's counters always.
const (
	gatewayDebugAddr = "127.0.0.1:16061"
	towerDebugAddr   = "127.0.0.1:16062"
)

// profileDuring saves a CPU profile of the service at addr, taken over d,
// and a heap profile taken three quarters into it, into the -profile
// directory; the returned func waits for them.
func profileDuring(o options, addr, name string, d time.Duration) func() {
	if o.profile == "" {
		return func() {}
	}
	if err := os.MkdirAll(o.profile, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return func() {}
	}
	save := func(url, file string) {
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(o.profile, file))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		save(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds()))), name+".cpu.pprof")
	})
	wg.Go(func() {
		time.Sleep(d * 3 / 4)
		save("http://"+addr+"/debug/pprof/heap", name+".heap.pprof")
	})
	return wg.Wait
}
