package controltower_test

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
)

var (
	must       = testkit.Must
	waitFor    = testkit.WaitFor
	randomName = testkit.RandomName
	call       = testkit.Call[[]byte]
	runBinary  = testkit.RunBinary
)

func brokerAddr() string {
	if a := os.Getenv("TEST_RABBITMQ_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:5672"
}

// proxy forwards a local port to RabbitMQ. Down closes the listener and
// every connection, as a broker outage looks to a client; Up listens on
// the same port again.
type proxy struct {
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	target string
}

func newProxy(tb testing.TB) *proxy {
	tb.Helper()
	p := &proxy{conns: map[net.Conn]struct{}{}, target: brokerAddr()}
	c, err := net.Dial("tcp", p.target)
	if err != nil {
		tb.Fatalf("RabbitMQ is not reachable at %s (run scripts/services up): %v", p.target, err)
	}
	c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.Down)
	return p
}

func (p *proxy) url() string { return "amqp://guest:guest@" + p.addr + "/" }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

func (p *proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) Up(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	waitFor(tb, 10*time.Second, "the proxy port to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	p.serve(ln)
}

// consumer binds a fresh queue to exchange with key and collects messages.
type consumer struct {
	mu   sync.Mutex
	msgs []amqp.Delivery
}

func consume(tb testing.TB, exchange, key string) *consumer {
	tb.Helper()
	conn, err := amqp.Dial("amqp://guest:guest@" + brokerAddr() + "/")
	if err != nil {
		tb.Fatalf("RabbitMQ is not reachable (run scripts/services up): %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	must(tb, err)
	must(tb, ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil))
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
	tb.Cleanup(func() {
		if conn, err := amqp.Dial("amqp://guest:guest@" + brokerAddr() + "/"); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
	return c
}

func (c *consumer) received() []amqp.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]amqp.Delivery(nil), c.msgs...)
}

func (c *consumer) ids() map[string]int {
	out := map[string]int{}
	for _, d := range c.received() {
		out[d.MessageId]++
	}
	return out
}

// testConfig is a control-tower configuration for a test: port 0, its own
// data dir and exchange.
func testConfig(tb testing.TB, amqpURL string) controltower.Config {
	tb.Helper()
	var cfg controltower.Config
	must(tb, config.Load(&cfg, []string{
		"SERVER_PORT=0",
		"DATA_DIR=" + tb.TempDir(),
		"PLUGINS_DIR=" + tb.TempDir(),
		"AMQP_URL=" + amqpURL,
		"AMQP_EXCHANGE=" + randomName("test-triggers-"),
		"MAX_BODY_BYTES=65536",
	}))
	cfg.Environ = []string{"PATH=" + os.Getenv("PATH")}
	return cfg
}

// start boots the service in this process until the test ends.
func start(tb testing.TB, cfg controltower.Config) (*controltower.Service, string) {
	tb.Helper()
	return testkit.Start(tb, controltower.Start, cfg)
}

// buildBinary builds a main package into dir under name.
func buildBinary(tb testing.TB, pkg, dir, name string) string {
	tb.Helper()
	out, err := testkit.Build(pkg, dir, name)
	must(tb, err)
	return out
}
