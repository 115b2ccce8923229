package publisher_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/publisher"
)

func amqpURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// dial connects to the test broker; a missing broker fails the test.
func dial(tb testing.TB) *amqp.Connection {
	tb.Helper()
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		tb.Fatalf("RabbitMQ is not reachable at %s (run scripts/services up): %v", amqpURL(), err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// consumer binds a fresh exclusive queue to exchange with each key.
func consumer(tb testing.TB, exchange string, keys ...string) <-chan amqp.Delivery {
	tb.Helper()
	ch, err := dial(tb).Channel()
	must(tb, err)
	must(tb, ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil))
	tb.Cleanup(func() {
		if c, err := amqp.Dial(amqpURL()); err == nil {
			if ch, err := c.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			c.Close()
		}
	})
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(tb, err)
	for _, k := range keys {
		must(tb, ch.QueueBind(q.Name, k, exchange, false, nil))
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	must(tb, err)
	return deliveries
}

type running struct {
	*publisher.Publisher
	name string
}

// start runs a publisher until the test ends.
func start(tb testing.TB, cfg publisher.Config) running {
	tb.Helper()
	if cfg.URL == "" {
		cfg.URL = amqpURL()
	}
	cfg.ConnectionName = randomName("test-publisher-")
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
	p := publisher.New(cfg, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return running{Publisher: p, name: cfg.ConnectionName}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func msg(id, apiVersion string) publisher.Message {
	return publisher.Message{
		ID: id, APIVersion: apiVersion, Protocol: "PlateTransfer", Source: "http",
		Body: []byte(`{"uuid":"` + id + `","apiVersion":"` + apiVersion + `"}`), Timestamp: time.Unix(1700000000, 0),
	}
}

func publish(tb testing.TB, p running, msgs ...publisher.Message) []publisher.Result {
	tb.Helper()
	waitFor(tb, "the publisher to connect", p.Connected)
	res, err := p.Publish(context.Background(), msgs)
	must(tb, err)
	return res
}

func receive(tb testing.TB, deliveries <-chan amqp.Delivery, n int) []amqp.Delivery {
	tb.Helper()
	var out []amqp.Delivery
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case d := <-deliveries:
			out = append(out, d)
		case <-timeout:
			tb.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

func TestRoutingKey(t *testing.T) {
	for in, want := range map[string]string{
		"ChiBio/v1alpha1/ChiBio1":     "ChiBio.v1alpha1.ChiBio1",
		"OT-2/v1alpha1":               "OT-2.v1alpha1",
		"TecanSpark/v1alpha1/GBSpark": "TecanSpark.v1alpha1.GBSpark",
	} {
		if got := publisher.RoutingKey(in); got != want {
			t.Errorf("RoutingKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessageContract(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "OT-2.v1alpha1.#")
	p := start(t, publisher.Config{Exchange: exchange})
	m := msg("3f2a9c0d1b7e4a55", "OT-2/v1alpha1/Robot1")
	res := publish(t, p, m)
	if res[0].Outcome != publisher.Published || res[0].ID != m.ID {
		t.Fatalf("result %+v", res[0])
	}
	d := receive(t, deliveries, 1)[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"body", string(d.Body), string(m.Body)},
		{"routing key", d.RoutingKey, "OT-2.v1alpha1.Robot1"},
		{"message id", d.MessageId, m.ID},
		{"content type", d.ContentType, "application/json"},
		{"delivery mode", d.DeliveryMode, amqp.Persistent},
		{"type", d.Type, "protocol"},
		{"app id", d.AppId, "control-tower"},
		{"timestamp", d.Timestamp.Unix(), m.Timestamp.Unix()},
		{"apiVersion header", d.Headers["apiVersion"], "OT-2/v1alpha1/Robot1"},
		{"protocol header", d.Headers["protocol"], "PlateTransfer"},
		{"source header", d.Headers["source"], "http"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestBindingsAndUnroutable(t *testing.T) {
	exchange := randomName("test-")
	plain := consumer(t, exchange, "ChiBio.v1alpha1")
	all := consumer(t, exchange, "ChiBio.v1alpha1.#")
	p := start(t, publisher.Config{Exchange: exchange})

	res := publish(t, p, msg("plain", "ChiBio/v1alpha1"), msg("device", "ChiBio/v1alpha1/ChiBio1"), msg("nobody", "Tecan/v1"))
	want := []publisher.Outcome{publisher.Published, publisher.Published, publisher.Unroutable}
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("%s: %s, want %s", r.ID, r.Outcome, want[i])
		}
	}
	if got := receive(t, plain, 1)[0].MessageId; got != "plain" {
		t.Errorf("ChiBio.v1alpha1 got %s", got)
	}
	ids := map[string]bool{}
	for _, d := range receive(t, all, 2) {
		ids[d.MessageId] = true
	}
	if !ids["plain"] || !ids["device"] {
		t.Errorf("ChiBio.v1alpha1.# got %v", ids)
	}
	select {
	case d := <-plain:
		t.Errorf("ChiBio.v1alpha1 also got %s", d.MessageId)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestManyInFlight(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "#")
	p := start(t, publisher.Config{Exchange: exchange, MaxInFlight: 100})
	const n = 2000
	msgs := make([]publisher.Message, n)
	for i := range msgs {
		msgs[i] = msg(fmt.Sprintf("m%04d", i), "OT-2/v1")
	}
	for _, r := range publish(t, p, msgs...) {
		if r.Outcome != publisher.Published {
			t.Fatalf("%s: %s %v", r.ID, r.Outcome, r.Err)
		}
	}
	ids := map[string]bool{}
	for _, d := range receive(t, deliveries, n) {
		ids[d.MessageId] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct ids, want %d", len(ids), n)
	}
}

func TestUnroutableAmongMany(t *testing.T) {
	exchange := randomName("test-")
	consumer(t, exchange, "Bound.#")
	p := start(t, publisher.Config{Exchange: exchange, MaxInFlight: 16})
	var msgs []publisher.Message
	for i := range 200 {
		api := "Bound/v1"
		if i%3 == 0 {
			api = "Unbound/v1"
		}
		msgs = append(msgs, msg(fmt.Sprintf("x%03d", i), api))
	}
	for i, r := range publish(t, p, msgs...) {
		want := publisher.Published
		if i%3 == 0 {
			want = publisher.Unroutable
		}
		if r.Outcome != want {
			t.Fatalf("%s: %s, want %s", r.ID, r.Outcome, want)
		}
	}
}

func TestConcurrentPublish(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "#")
	p := start(t, publisher.Config{Exchange: exchange})
	waitFor(t, "connect", p.Connected)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			msgs := make([]publisher.Message, 100)
			for i := range msgs {
				msgs[i] = msg(fmt.Sprintf("g%d-%d", g, i), "OT-2/v1")
			}
			res, err := p.Publish(context.Background(), msgs)
			if err != nil {
				errs <- err
				return
			}
			for _, r := range res {
				if r.Outcome != publisher.Published {
					errs <- fmt.Errorf("%s: %s", r.ID, r.Outcome)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, d := range receive(t, deliveries, 800) {
		ids[d.MessageId] = true
	}
	if len(ids) != 800 {
		t.Fatalf("%d distinct ids, want 800", len(ids))
	}
}

// closeConnection makes the broker close the named connection, as an
// operator (or a broker going down) would, leaving other connections alone.
func closeConnection(tb testing.TB, name string) {
	tb.Helper()
	out, err := exec.Command("rabbitmqctl", "list_connections", "pid", "client_properties", "-q", "--no-table-headers").CombinedOutput()
	if err != nil {
		tb.Fatalf("rabbitmqctl list_connections: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, `{"connection_name","`+name+`"}`) {
			pid, _, _ := strings.Cut(line, "\t")
			if out, err := exec.Command("rabbitmqctl", "close_connection", pid, "closed by a test").CombinedOutput(); err != nil {
				tb.Fatalf("rabbitmqctl close_connection: %v\n%s", err, out)
			}
			return
		}
	}
	tb.Fatalf("no broker connection named %s in:\n%s", name, out)
}

func TestReconnectsAfterTheBrokerClosesTheConnection(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "#")
	p := start(t, publisher.Config{Exchange: exchange})
	publish(t, p, msg("before", "OT-2/v1"))

	closeConnection(t, p.name)
	waitFor(t, "the publisher to notice the closed connection", func() bool { return !p.Connected() })
	waitFor(t, "the publisher to reconnect", p.Connected)
	res := publish(t, p, msg("after", "OT-2/v1"))
	if res[0].Outcome != publisher.Published {
		t.Fatalf("after reconnect: %+v", res[0])
	}
	got := receive(t, deliveries, 2)
	if got[0].MessageId != "before" || got[1].MessageId != "after" {
		t.Fatalf("received %s, %s", got[0].MessageId, got[1].MessageId)
	}
}

func TestPublishWithoutBrokerFailsFast(t *testing.T) {
	p := start(t, publisher.Config{URL: "amqp://guest:guest@127.0.0.1:1/"})
	begin := time.Now()
	_, err := p.Publish(context.Background(), []publisher.Message{msg("x", "OT-2/v1")})
	if !errors.Is(err, publisher.ErrNotConnected) {
		t.Fatalf("want ErrNotConnected, got %v", err)
	}
	if p.Connected() {
		t.Fatal("connected to a closed port")
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Fatalf("Publish blocked for %s without a broker", waited)
	}
}

func TestConnectionLostMidPublishSettlesEveryMessage(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "Bound.#")
	proxy := newBlockingProxy(t)
	p := start(t, publisher.Config{URLs: []string{proxy.url()}, Exchange: exchange, MaxInFlight: 64})
	waitFor(t, "connect", p.Connected)
	// Unroutable messages among them: the broker is sending returns when
	// the connection goes.
	msgs := make([]publisher.Message, 20000)
	for i := range msgs {
		api := "Bound/v1"
		if i%2 == 0 {
			api = "Unbound/v1"
		}
		msgs[i] = msg(fmt.Sprintf("c%05d", i), api)
	}
	type out struct {
		res []publisher.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := p.Publish(context.Background(), msgs)
		done <- out{res, err}
	}()
	// Cut the connection once the batch is under way: the first message
	// has reached the consumer, thousands are still to go.
	select {
	case <-deliveries:
	case <-time.After(30 * time.Second):
		t.Fatal("no message of the batch reached the consumer")
	}
	proxy.Cut()
	select {
	case o := <-done:
		must(t, o.err)
		counts := map[publisher.Outcome]int{}
		for _, r := range o.res {
			counts[r.Outcome]++
		}
		if counts[publisher.Failed] == 0 || len(o.res) != len(msgs) {
			t.Fatalf("outcomes %v: want every message settled and those cut off failed", counts)
		}
		t.Logf("outcomes when the connection closed mid-batch: %v", counts)
	case <-time.After(60 * time.Second):
		t.Fatal("Publish did not return after the connection closed")
	}
}

// Given a cluster's nodes, the publisher passes over one that does not
// answer and, when its connection is lost, moves on to the next node,
// round robin.
func TestNodesAreTriedInTurn(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "#")
	other := newBlockingProxy(t) // a second way to the same broker
	nodes := []string{"amqp://guest:secret@127.0.0.1:1/", amqpURL(), other.url()}
	p := start(t, publisher.Config{URLs: nodes, Exchange: exchange})
	redacted := func(raw string) string {
		u, err := url.Parse(raw)
		must(t, err)
		return u.Redacted()
	}

	waitFor(t, "the publisher to connect to the second node", func() bool { return p.Node() == redacted(nodes[1]) })
	publish(t, p, msg("second", "OT-2/v1"))
	closeConnection(t, p.name)
	waitFor(t, "the publisher to move on to the third node", func() bool { return p.Node() == redacted(nodes[2]) })
	publish(t, p, msg("third", "OT-2/v1"))
	closeConnection(t, p.name)
	// Round robin: the first node again, which does not answer, then the
	// second.
	waitFor(t, "the publisher to come round to the second node", func() bool { return p.Node() == redacted(nodes[1]) })
	res := publish(t, p, msg("again", "OT-2/v1"))
	if res[0].Outcome != publisher.Published {
		t.Fatalf("after coming round: %+v", res[0])
	}
	got := receive(t, deliveries, 3)
	if got[0].MessageId != "second" || got[1].MessageId != "third" || got[2].MessageId != "again" {
		t.Fatalf("received %s, %s, %s", got[0].MessageId, got[1].MessageId, got[2].MessageId)
	}
	if p.Node() == "" || strings.Contains(p.Node(), "secret") {
		t.Fatalf("Node() = %q", p.Node())
	}
}
