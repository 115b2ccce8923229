package clientkit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/sdk/client"
)

// handled counts handler calls per trigger uuid.
type handled struct {
	mu     sync.Mutex
	calls  map[string]int
	protos map[string]string
}

func newHandled() *handled { return &handled{calls: map[string]int{}, protos: map[string]string{}} }

func (h *handled) add(m client.Message) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[m.Trigger.UUID]++
	h.protos[m.Trigger.UUID] = m.Trigger.Protocol
	return h.calls[m.Trigger.UUID]
}

func (h *handled) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.calls {
		out[k] = v
	}
	return out
}

// run starts Consume until the test ends and waits until it consumes.
// stop ends it and returns Consume's result.
func run(t *testing.T, amqpURL, binding string, h client.Handler, opts client.ConsumeOptions, lg *logs) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts.Logger = lg.logger(t)
	before := lg.count("msg=consuming")
	go func() { done <- client.Consume(ctx, amqpURL, binding, h, opts) }()
	var (
		once   sync.Once
		result error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Consume did not return within 10s of its context's end")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, 15*time.Second, "the consumer to consume", func() bool { return lg.count("msg=consuming") > before })
	return stop
}

// Each trigger reaches the Go consumer's handler once, across a cut of
// the broker connection while a handler runs: the message it was
// handling (done, but its acknowledgement lost with the connection) is
// delivered again and acknowledged without a second call.
func TestConsumerHandlesEachTriggerOnceAcrossAConnectionCut(t *testing.T) {
	rabbit := newProxy(t, brokerAddr())
	cfg, tower := startTower(t, brokerURL())
	queue := testkit.RandomName("test-robot-")
	deleteQueues(t, queue, cfg.AMQPExchange)

	h := newHandled()
	holding, release := make(chan struct{}), make(chan struct{})
	handler := func(ctx context.Context, m client.Message) error {
		if h.add(m) == 1 && m.Trigger.Protocol == "Hold" {
			close(holding)
			<-release
		}
		return nil
	}
	var lg logs
	run(t, "amqp://guest:guest@"+rabbit.addr+"/", "OT-2.v1alpha1.#", handler, client.ConsumeOptions{
		Queue: queue, Exchange: cfg.AMQPExchange, Prefetch: 4,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	}, &lg)

	held := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Hold","spec":{"volume":1}}`)
	var uuids []string
	for i := range 9 {
		uuids = append(uuids, postTrigger(t, tower, fmt.Sprintf(`{"apiVersion":"OT-2/v1alpha1/Robot%d","protocol":"Run","spec":{"volume":%d}}`, i, i)))
	}
	select {
	case <-holding:
	case <-time.After(15 * time.Second):
		t.Fatal("the first trigger never reached the handler")
	}
	rabbit.Cut()
	close(release)
	waitFor(t, 30*time.Second, "every trigger handled", func() bool { return len(h.snapshot()) == 10 })
	waitFor(t, 15*time.Second, "the held trigger's redelivery to be acknowledged as a duplicate", func() bool {
		return lg.count("duplicate of a handled message") >= 1
	})
	for _, u := range append(uuids, held) {
		if n := h.snapshot()[u]; n != 1 {
			t.Errorf("trigger %s handled %d times", u, n)
		}
	}
	if n := lg.count("msg=consuming"); n < 2 {
		t.Fatalf("consumed on %d connections, want a reconnect", n)
	}
	// Nothing is left unacknowledged: with the consumer stopped, the
	// queue is empty.
	ch := amqpChannel(t)
	waitFor(t, 10*time.Second, "an empty queue", func() bool { return queueDepth(t, ch, queue) == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := len(h.snapshot()); n != 10 {
		t.Fatalf("%d triggers handled", n)
	}
}

// A trigger whose handler keeps failing is handed over MaxDeliveries
// times, then dead-lettered to <queue>.dead; Permanent dead-letters at
// once, and so does a body that is not a trigger; a consumer dying
// before it acknowledges counts as a failure too (the queue's
// x-delivery-limit).
func TestConsumerDeadLettersPoisonMessages(t *testing.T) {
	cfg, tower := startTower(t, brokerURL())
	queue := testkit.RandomName("test-poison-")
	deleteQueues(t, queue, cfg.AMQPExchange)
	h := newHandled()
	handler := func(ctx context.Context, m client.Message) error {
		h.add(m)
		switch m.Trigger.Protocol {
		case "Fail":
			return errors.New("the robot is jammed")
		case "Refuse":
			return client.Permanent(errors.New("this robot cannot do that"))
		}
		return nil
	}
	var lg logs
	stop := run(t, brokerURL(), "OT-2.v1alpha1.#", handler, client.ConsumeOptions{
		Queue: queue, Exchange: cfg.AMQPExchange, MaxDeliveries: 3,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	}, &lg)

	fail := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Fail","spec":{"volume":1}}`)
	refuse := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Refuse","spec":{"volume":1}}`)
	good := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Good","spec":{"volume":1}}`)
	ch := amqpChannel(t)
	must(t, ch.Publish(cfg.AMQPExchange, "OT-2.v1alpha1", false, false, amqp.Publishing{MessageId: "garbage-1", Body: []byte("not json")}))

	dead := client.DeadLetterName(queue)
	// The good trigger may be published after the others are dead
	// letters (the relay publishes in rounds): wait for both.
	waitFor(t, 20*time.Second, "three dead letters and the good trigger handled", func() bool {
		return queueDepth(t, ch, dead) == 3 && h.snapshot()[good] > 0
	})
	calls := h.snapshot()
	if calls[fail] != 3 || calls[refuse] != 1 || calls[good] != 1 {
		t.Fatalf("handler calls: %v (fail %s, refuse %s, good %s)", calls, fail, refuse, good)
	}
	got := map[string]string{}
	for range 3 {
		d, ok, err := ch.Get(dead, true)
		must(t, err)
		if !ok {
			t.Fatal("dead-letter queue emptied early")
		}
		reason := ""
		if deaths, _ := d.Headers["x-death"].([]any); len(deaths) > 0 {
			if death, _ := deaths[0].(amqp.Table); death != nil {
				reason, _ = death["reason"].(string)
			}
		}
		got[d.MessageId] = reason
	}
	for _, id := range []string{fail, refuse, "garbage-1"} {
		if got[id] != "rejected" {
			t.Fatalf("dead letters %v: want %s rejected", got, id)
		}
	}

	// A consumer that dies holding a message: after MaxDeliveries such
	// deaths the broker dead-letters it.
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	crash := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Crash","spec":{"volume":1}}`)
	for i := range 3 {
		conn, err := amqp.Dial(brokerURL())
		must(t, err)
		c, err := conn.Channel()
		must(t, err)
		msgs, err := c.Consume(queue, "", false, false, false, false, nil)
		must(t, err)
		select {
		case d := <-msgs:
			if d.MessageId != crash {
				t.Fatalf("delivery %d: %s, want %s", i+1, d.MessageId, crash)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("delivery %d never came", i+1)
		}
		conn.Close() // dies without acknowledging
	}
	waitFor(t, 10*time.Second, "the crashing trigger dead-lettered by the broker", func() bool { return queueDepth(t, ch, dead) == 1 })
	if queueDepth(t, ch, queue) != 0 {
		t.Fatal("the crashing trigger is still in the queue")
	}
}

// A queue declared before with other arguments is an error Consume
// returns, not one it retries.
func TestConsumeReturnsARefusedDeclaration(t *testing.T) {
	queue, exchange := testkit.RandomName("test-classic-"), testkit.RandomName("test-triggers-")
	deleteQueues(t, queue, exchange)
	ch := amqpChannel(t)
	_, err := ch.QueueDeclare(queue, true, false, false, false, nil)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lg logs
	err = client.Consume(ctx, brokerURL(), "OT-2.#", func(context.Context, client.Message) error { return nil },
		client.ConsumeOptions{Queue: queue, Exchange: exchange, Logger: lg.logger(t)})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || ctx.Err() != nil {
		t.Fatalf("Consume on a classic queue of that name: %v", err)
	}
}

// With AMQP_URL listing several nodes, a node that does not answer is
// passed over for the next.
func TestConsumerTriesTheNextNode(t *testing.T) {
	cfg, tower := startTower(t, brokerURL())
	queue := testkit.RandomName("test-nodes-")
	deleteQueues(t, queue, cfg.AMQPExchange)
	h := newHandled()
	var lg logs
	dead := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", freePort(t))
	run(t, dead+" , "+brokerURL(), "OT-2.v1alpha1.#", func(_ context.Context, m client.Message) error {
		h.add(m)
		return nil
	}, client.ConsumeOptions{Queue: queue, Exchange: cfg.AMQPExchange, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, &lg)
	u := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"Run","spec":{"volume":1}}`)
	waitFor(t, 15*time.Second, "the trigger handled", func() bool { return h.snapshot()[u] == 1 })
	if lg.count("broker connection lost") == 0 {
		t.Fatal("the dead node was not tried first")
	}
}
