// Package e2e runs the whole routing layer against the fake Riffyn
// server: the real control-tower and data-gateway binaries with the real
// Riffyn plugin binaries, RabbitMQ in between.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/plugins/riffyn/riffyntest"
)

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func build(tb testing.TB, pkg, dir, name string) {
	tb.Helper()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// service runs a service binary until the test ends.
func service(tb testing.TB, bin string, env []string) string {
	tb.Helper()
	port := freePort(tb)
	cmd := exec.Command(bin)
	cmd.Env = append(env, fmt.Sprintf("SERVER_PORT=%d", port), "PATH="+os.Getenv("PATH"))
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	must(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(tb, bin+" to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return base
}

type consumer struct {
	mu   sync.Mutex
	msgs []amqp.Delivery
}

func consume(tb testing.TB, exchange, key string) *consumer {
	tb.Helper()
	url := os.Getenv("AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatalf("RabbitMQ is not reachable at %s (run scripts/services up): %v", url, err)
	}
	tb.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	must(tb, err)
	must(tb, ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil))
	tb.Cleanup(func() { _ = ch.ExchangeDelete(exchange, false, false) })
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(tb, err)
	must(tb, ch.QueueBind(q.Name, key, exchange, false, nil))
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	must(tb, err)
	c := &consumer{}
	go func() {
		for d := range deliveries {
			c.mu.Lock()
			c.msgs = append(c.msgs, d)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *consumer) received() []amqp.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]amqp.Delivery(nil), c.msgs...)
}

func post(tb testing.TB, url, body string) (int, string) {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	must(tb, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRiffynRunToRobotAndBack(t *testing.T) {
	bins := t.TempDir()
	build(t, "github.com/routinglayer/routing/host/cmd/control-tower", bins, "control-tower")
	build(t, "github.com/routinglayer/routing/host/cmd/data-gateway", bins, "data-gateway")
	watchers, pushers := t.TempDir(), t.TempDir()
	build(t, "github.com/routinglayer/routing/plugins/riffyn/cmd/watcher-riffyn", watchers, "watcher-riffyn")
	build(t, "github.com/routinglayer/routing/plugins/riffyn/cmd/pusher-riffyn", pushers, "pusher-riffyn")

	s := riffyntest.NewServer(t, "secret-key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Dilution 1", 75)

	var b [6]byte
	_, _ = rand.Read(b[:])
	exchange := "e2e-" + hex.EncodeToString(b[:])
	robot := consume(t, exchange, "OT-2.v1alpha1.#")
	riffynEnv := []string{"PLUGIN_RIFFYN_API_KEY=secret-key", "PLUGIN_RIFFYN_BASE_URL=" + s.BaseURL(), "PLUGIN_RIFFYN_POLL_INTERVAL=100ms"}
	tower := service(t, filepath.Join(bins, "control-tower"), append([]string{
		"DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + watchers, "AMQP_EXCHANGE=" + exchange,
	}, riffynEnv...))
	gateway := service(t, filepath.Join(bins, "data-gateway"), append([]string{
		"DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + pushers, "CONTROL_TOWER_URL=" + tower, "VERIFY_TRIGGERS=true",
	}, riffynEnv...))

	for _, base := range []string{tower, gateway} {
		waitFor(t, "the Riffyn plugin to run at "+base, func() bool {
			resp, err := http.Get(base + "/plugins/riffyn")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), `"state": "running"`)
		})
	}

	// A scientist starts the run in Riffyn: the robot gets its trigger.
	s.SetStatus(run, riffyn.RunRunning)
	waitFor(t, "the trigger at the robot's queue", func() bool { return len(robot.received()) == 1 })
	msg := robot.received()[0]
	var trig struct {
		UUID     string
		Protocol string
		Spec     map[string]any
		Metadata struct{ Source string }
	}
	must(t, json.Unmarshal(msg.Body, &trig))
	if msg.RoutingKey != "OT-2.v1alpha1" || trig.Protocol != "PlateTransfer" || trig.Spec["volume"] != 75.0 || trig.Metadata.Source != "riffyn" || msg.MessageId != trig.UUID {
		t.Fatalf("trigger message: key %s body %s", msg.RoutingKey, msg.Body)
	}

	// The robot reports its readings for that trigger, with an error
	// column that is not a property of the run's output.
	status, body := post(t, gateway+"/data/batch", `{"uuid":"`+trig.UUID+`","rows":[
		{"data":{"timeElapsed":0,"odMeasured":0.12,"error":null}},
		{"data":{"timeElapsed":30,"odMeasured":0.48,"note":"done","error":null}}]}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST /data/batch: %d %s", status, body)
	}
	var accepted struct{ ID int64 }
	must(t, json.Unmarshal([]byte(body), &accepted))
	waitFor(t, "the readings in the Riffyn run", func() bool {
		ev := s.Events(run, f.Output)
		return len(ev) == 2 && ev[1][f.ODProp] == "0.48"
	})
	ev := s.Events(run, f.Output)
	if ev[0][f.TimeProp] != "0" || ev[0][f.ODProp] != "0.12" || ev[1][f.TimeProp] != "30" || ev[1][f.NoteProp] != "done" {
		t.Fatalf("events in the run: %+v", ev)
	}
	// The delivery is recorded as delivered, with the ignored key noted.
	var task struct{ Pusher, State, Note, LastError string }
	waitFor(t, "the delivery recorded as delivered", func() bool {
		resp, err := http.Get(fmt.Sprintf("%s/data/%d", gateway, accepted.ID))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var d struct{ Pushers []json.RawMessage }
		if json.NewDecoder(resp.Body).Decode(&d) != nil || len(d.Pushers) != 1 {
			return false
		}
		must(t, json.Unmarshal(d.Pushers[0], &task))
		return task.State == "delivered"
	})
	if task.Pusher != "riffyn" || task.LastError != "" || task.Note != `ignored keys that are not properties of output "Readings": error` {
		t.Fatalf("delivery status: %+v", task)
	}

	// Rows for a uuid the control-tower does not know are refused.
	if status, body := post(t, gateway+"/data", `{"uuid":"nope","row":{"data":{"timeElapsed":1}}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown uuid: %d %s", status, body)
	}
}
