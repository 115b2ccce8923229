//go:build brokeralarm

// This test sets a memory alarm on the local RabbitMQ node, which blocks
// every publisher on it: run it alone (make test runs it in a step of its
// own, after the other tests, and clears the alarm whatever happens):
//
//	go test -race -count=1 -tags brokeralarm -run '^TestBlockedBroker' ./host/controltower/

package controltower_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/metrics/metricstest"
)

// shutdownBound is how long the control-tower may take to exit after
// SIGTERM while the broker blocks its connection: the publisher's
// CloseTimeout, which a blocked connection does not even wait for.
const shutdownBound = 5 * time.Second

func rabbitmqctl(tb testing.TB, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// watermarkRE matches the node's memory watermark as the memory monitor
// reports it: a fraction of the RAM (0.4) or {absolute,Bytes}.
var watermarkRE = regexp.MustCompile(`^\s*(\{absolute,\s*"?([^}"]+)"?\}|[0-9.eE+-]+)\s*$`)

// memoryAlarm sets a memory alarm on the local broker (a watermark of
// 0.000001 of the RAM) and returns the function that restores the
// watermark it found; the test's cleanup calls it too, so the alarm never
// outlives the test. It returns once the broker blocks publishers: a
// probe connection publishing to amq.direct was told so.
func memoryAlarm(t *testing.T) (restore func()) {
	t.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Fatal("rabbitmqctl is not on PATH: this test sets a memory alarm on the local RabbitMQ node")
	}
	// The value in force: rabbitmqctl environment shows the configured one.
	current := rabbitmqctl(t, "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
	m := watermarkRE.FindStringSubmatch(current)
	if m == nil {
		t.Fatalf("the broker's memory watermark is not a fraction nor {absolute,Bytes}: %q", current)
	}
	args := []string{"set_vm_memory_high_watermark", m[1]}
	if m[2] != "" {
		args = []string{"set_vm_memory_high_watermark", "absolute", m[2]}
	} else if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 0.01 {
		t.Fatalf("vm_memory_high_watermark is %s: an alarm seems to be left set; clear it with rabbitmqctl set_vm_memory_high_watermark 0.4", m[1])
	}

	probe, err := amqp.Dial("amqp://guest:guest@" + brokerAddr() + "/")
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable (run scripts/services up): %v", err)
	}
	// A blocked connection cannot be closed cleanly: give up quickly.
	t.Cleanup(func() { _ = probe.CloseDeadline(time.Now().Add(time.Second)) })
	blocks := probe.NotifyBlocked(make(chan amqp.Blocking, 4))
	ch, err := probe.Channel()
	must(t, err)

	var once sync.Once
	restore = func() {
		once.Do(func() {
			begin := time.Now()
			rabbitmqctl(t, args...)
			t.Logf("memory alarm cleared (rabbitmqctl %s, %s)", strings.Join(args, " "), time.Since(begin).Round(time.Millisecond))
		})
	}
	t.Cleanup(restore)
	rabbitmqctl(t, "set_vm_memory_high_watermark", "0.000001")
	t.Logf("memory alarm set; the watermark was %s", m[1])

	// The broker blocks a connection, and says so, once it publishes
	// under an alarm; its memory monitor raises the alarm within seconds.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case b := <-blocks:
			if b.Active {
				t.Logf("the broker blocks publishers: %q", b.Reason)
				return restore
			}
		case <-tick.C:
			_ = ch.PublishWithContext(context.Background(), "amq.direct", randomName("alarm-probe-"), false, false, amqp.Publishing{Body: []byte("probe")})
		case <-deadline:
			t.Fatal("the broker did not block a publisher within 30s of the memory alarm")
		}
	}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// TestBlockedBroker runs the control-tower binary against a broker under
// a memory alarm: it stays up and says the broker is blocked, accepts
// triggers and keeps them pending, and exits promptly on SIGTERM; after
// the alarm, a new start publishes what it had accepted.
func TestBlockedBroker(t *testing.T) {
	if !isLoopback(brokerAddr()) {
		t.Skipf("the broker at %s is not local: rabbitmqctl cannot set its alarm", brokerAddr())
	}
	bin := buildBinary(t, "github.com/routinglayer/routing/host/cmd/control-tower", t.TempDir(), "control-tower")
	exchange := randomName("test-triggers-")
	c := consume(t, exchange, "#")
	env := []string{"DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + t.TempDir(),
		"AMQP_URL=amqp://guest:guest@" + brokerAddr() + "/", "AMQP_EXCHANGE=" + exchange}
	cmd, base := runBinary(t, bin, env)
	waitFor(t, 20*time.Second, "the control-tower to connect", func() bool {
		return call(t, http.MethodGet, base+"/readyz", nil).Status == http.StatusOK
	})
	post := func(n int) string {
		t.Helper()
		r := call(t, http.MethodPost, base+"/triggers", fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1","protocol":"PlateTransfer","spec":{"n":%d}}`, n))
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /triggers: %d %s", r.Status, r.Body)
		}
		var s stored
		r.JSON(t, &s)
		return s.UUID
	}

	alarmBegin := time.Now()
	clearAlarm := memoryAlarm(t)
	// The first publish under the alarm makes the broker block the
	// connection; it may or may not be confirmed.
	first := post(1)
	var ready testkit.Reply
	waitFor(t, 20*time.Second, "/readyz to report the broker blocked", func() bool {
		ready = call(t, http.MethodGet, base+"/readyz", nil)
		return ready.Status == http.StatusServiceUnavailable
	})
	var checks map[string]string
	ready.JSON(t, &checks)
	if checks["broker"] != "broker blocked: low on memory" || checks["store"] != "ok" {
		t.Fatalf("readyz while blocked: %s", ready.Body)
	}

	// Accepted and stored, not published.
	second := post(2)
	var status struct {
		Summary struct {
			PendingTriggers     int    `json:"pendingTriggers"`
			BrokerConnected     bool   `json:"brokerConnected"`
			BrokerBlocked       bool   `json:"brokerBlocked"`
			BrokerBlockedReason string `json:"brokerBlockedReason"`
		} `json:"summary"`
	}
	call(t, http.MethodGet, base+"/status", nil).JSON(t, &status)
	if s := status.Summary; !s.BrokerConnected || !s.BrokerBlocked || s.BrokerBlockedReason != "low on memory" || s.PendingTriggers < 1 {
		t.Fatalf("/status while blocked: %+v", s)
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if blocked, connected := m.Must(t, "routing_broker_blocked"), m.Must(t, "routing_broker_connected"); blocked != 1 || connected != 1 {
		t.Fatalf("metrics while blocked: broker_blocked %v, broker_connected %v; want 1, 1", blocked, connected)
	}
	var got stored
	call(t, http.MethodGet, base+"/triggers/"+second, nil).JSON(t, &got)
	if got.Status != "pending" {
		t.Fatalf("a trigger posted while blocked is %q, want pending", got.Status)
	}
	if c.ids()[second] != 0 {
		t.Fatal("a trigger posted while blocked reached the consumer")
	}

	// SIGTERM while blocked.
	done := make(chan error, 1)
	stopBegin := time.Now()
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		took := time.Since(stopBegin)
		t.Logf("exited %s after SIGTERM while blocked (%v)", took.Round(time.Millisecond), err)
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		if took > shutdownBound {
			t.Errorf("took %s to exit after SIGTERM while blocked, want at most %s", took, shutdownBound)
		}
	case <-time.After(shutdownBound + 10*time.Second):
		clearAlarm()
		select {
		case <-done:
			t.Fatalf("did not exit within %s of SIGTERM while blocked; it did %s after SIGTERM, once the alarm was cleared",
				shutdownBound+10*time.Second, time.Since(stopBegin).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatal("did not exit after SIGTERM, not even once the alarm was cleared")
		}
	}
	clearAlarm()
	t.Logf("the alarm lasted %s", time.Since(alarmBegin).Round(time.Millisecond))

	// A new start publishes what the stopped one accepted.
	_, base = runBinary(t, bin, env)
	waitFor(t, 30*time.Second, "both triggers at the consumer", func() bool {
		ids := c.ids()
		return ids[first] > 0 && ids[second] > 0
	})
	waitFor(t, 10*time.Second, "both triggers recorded as published", func() bool {
		for _, id := range []string{first, second} {
			var s stored
			call(t, http.MethodGet, base+"/triggers/"+id, nil).JSON(t, &s)
			if s.Status != "published" {
				return false
			}
		}
		return true
	})
	if r := call(t, http.MethodGet, base+"/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after the alarm: %d %s", r.Status, r.Body)
	}
}
