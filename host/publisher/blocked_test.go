package publisher_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/publisher"
)

// blockingProxy forwards a local port to RabbitMQ and plays a broker
// under a resource alarm without setting one (an alarm blocks every
// publisher on the node): Block stops forwarding what clients send, as a
// blocked connection is no longer read, and sends them connection.blocked;
// Unblock undoes both. Pause stops forwarding without telling the clients.
type blockingProxy struct {
	ln     net.Listener
	target string
	user   *url.Userinfo

	mu      sync.Mutex
	resumed *sync.Cond
	paused  bool
	closed  bool
	held    int // bytes read from clients while paused
	clients []*frameConn
	conns   []net.Conn
}

// frameConn writes whole frames to a client, so that injected ones fall
// between the broker's.
type frameConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (f *frameConn) write(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.c.Write(b)
	return err
}

func newBlockingProxy(tb testing.TB) *blockingProxy {
	tb.Helper()
	u, err := url.Parse(amqpURL())
	must(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	p := &blockingProxy{ln: ln, target: u.Host, user: u.User}
	p.resumed = sync.NewCond(&p.mu)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *blockingProxy) url() string {
	return (&url.URL{Scheme: "amqp", User: p.user, Host: p.ln.Addr().String(), Path: "/"}).String()
}

func (p *blockingProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		fc := &frameConn{c: c}
		p.mu.Lock()
		p.clients = append(p.clients, fc)
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.upstream(c, up)
		go p.downstream(up, fc)
	}
}

// upstream copies client -> broker, holding back what it reads while
// paused.
func (p *blockingProxy) upstream(c, up net.Conn) {
	defer up.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.paused {
			p.held += n
		}
		for p.paused && !p.closed {
			p.resumed.Wait()
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		if _, err := up.Write(buf[:n]); err != nil {
			return
		}
	}
}

// downstream copies broker -> client frame by frame (7-byte header: type,
// channel, payload size; the payload; the frame-end octet).
func (p *blockingProxy) downstream(up net.Conn, fc *frameConn) {
	defer fc.c.Close()
	r := bufio.NewReader(up)
	for {
		frame := make([]byte, 7)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		frame = append(frame, make([]byte, binary.BigEndian.Uint32(frame[3:])+1)...)
		if _, err := io.ReadFull(r, frame[7:]); err != nil {
			return
		}
		if fc.write(frame) != nil {
			return
		}
	}
}

// method frames a connection-class method (class 10) on channel 0.
func method(id uint16, args []byte) []byte {
	payload := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 10), id)
	payload = append(payload, args...)
	frame := []byte{1, 0, 0}
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	return append(append(frame, payload...), 0xCE)
}

func (p *blockingProxy) tell(frame []byte) {
	p.mu.Lock()
	clients := append([]*frameConn(nil), p.clients...)
	p.mu.Unlock()
	for _, fc := range clients {
		_ = fc.write(frame)
	}
}

// Pause stops forwarding what clients send.
func (p *blockingProxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Cut closes every connection through the proxy at once, as a lost
// network or a broker that died looks to a client.
func (p *blockingProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns, p.clients = nil, nil
}

// Held is how many bytes clients sent since the proxy paused.
func (p *blockingProxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Block pauses and sends connection.blocked with reason.
func (p *blockingProxy) Block(reason string) {
	p.Pause()
	p.tell(method(60, append([]byte{byte(len(reason))}, reason...)))
}

// Unblock forwards again, held bytes first, and sends connection.unblocked.
func (p *blockingProxy) Unblock() {
	p.mu.Lock()
	p.paused, p.held = false, 0
	p.resumed.Broadcast()
	p.mu.Unlock()
	p.tell(method(61, nil))
}

func (p *blockingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.resumed.Broadcast()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// runUntil runs a publisher until the returned stop is called; stop
// cancels its context and reports how long Run took to return.
func runUntil(tb testing.TB, cfg publisher.Config) (*publisher.Publisher, func() time.Duration) {
	tb.Helper()
	cfg.ConnectionName = randomName("test-publisher-")
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
	p := publisher.New(cfg, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			begin := time.Now()
			cancel()
			select {
			case <-done:
				took = time.Since(begin)
			case <-time.After(30 * time.Second):
				tb.Fatal("Run did not return within 30s of its context ending")
			}
		})
		return took
	}
	tb.Cleanup(func() { stop() })
	return p, stop
}

func blockedReason(p interface{ Blocked() (string, bool) }) string {
	r, _ := p.Blocked()
	return r
}

func TestBlockedConnectionIsReportedAndNotPublishedOn(t *testing.T) {
	exchange := randomName("test-")
	deliveries := consumer(t, exchange, "#")
	bp := newBlockingProxy(t)
	p := start(t, publisher.Config{URL: bp.url(), Exchange: exchange})
	if r := publish(t, p, msg("before", "OT-2/v1")); r[0].Outcome != publisher.Published {
		t.Fatalf("before the block: %+v", r[0])
	}

	bp.Block("low on memory")
	waitFor(t, "the publisher to see the block", func() bool { return blockedReason(p) == "low on memory" })
	if !p.Connected() {
		t.Fatal("a blocked connection reported as not connected")
	}
	begin := time.Now()
	_, err := p.Publish(context.Background(), []publisher.Message{msg("during", "OT-2/v1")})
	if !errors.Is(err, publisher.ErrBlocked) || time.Since(begin) > time.Second {
		t.Fatalf("Publish on a blocked connection: %v after %s, want ErrBlocked at once", err, time.Since(begin))
	}
	if bp.Held() != 0 {
		t.Fatalf("%d bytes sent on the blocked connection", bp.Held())
	}

	bp.Unblock()
	waitFor(t, "the publisher to see the unblock", func() bool { _, b := p.Blocked(); return !b })
	if r := publish(t, p, msg("after", "OT-2/v1")); r[0].Outcome != publisher.Published {
		t.Fatalf("after the unblock: %+v", r[0])
	}
	got := receive(t, deliveries, 2)
	if got[0].MessageId != "before" || got[1].MessageId != "after" {
		t.Fatalf("received %s, %s; want before, after", got[0].MessageId, got[1].MessageId)
	}
}

// The broker stops reading after a publish and then says it blocked the
// connection: the confirm never comes and the closing handshake would
// never be answered.
func TestRunEndsAtOnceOnABlockedConnection(t *testing.T) {
	bp := newBlockingProxy(t)
	p, stop := runUntil(t, publisher.Config{URL: bp.url(), Exchange: randomName("test-"), CloseTimeout: 20 * time.Second})
	waitFor(t, "connect", p.Connected)

	bp.Pause()
	results := make(chan []publisher.Result, 1)
	go func() {
		res, _ := p.Publish(context.Background(), []publisher.Message{msg("stuck", "OT-2/v1")})
		results <- res
	}()
	waitFor(t, "the message to reach the broker's socket", func() bool { return bp.Held() > 0 })
	bp.Block("low on memory")
	waitFor(t, "the publisher to see the block", func() bool { _, b := p.Blocked(); return b })

	if took := stop(); took > 2*time.Second {
		t.Fatalf("Run took %s to return on a blocked connection (CloseTimeout 20s must not apply)", took)
	} else {
		t.Logf("Run returned %s after its context ended", took)
	}
	select {
	case res := <-results:
		if res[0].Outcome != publisher.Failed {
			t.Fatalf("the unconfirmed message: %+v, want failed", res[0])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish still waits for a confirm after Run returned")
	}
	if _, b := p.Blocked(); b || p.Connected() {
		t.Fatal("still connected or blocked after Run returned")
	}
}

// The broker stops reading without a word while a batch is being written:
// the socket's buffers fill and the client's write waits. Ending Run's
// context ends that write and Publish within CloseTimeout.
func TestRunEndsWithinCloseTimeoutWhenTheBrokerStopsReading(t *testing.T) {
	bp := newBlockingProxy(t)
	const closeTimeout = 500 * time.Millisecond
	p, stop := runUntil(t, publisher.Config{URL: bp.url(), Exchange: randomName("test-"), CloseTimeout: closeTimeout})
	waitFor(t, "connect", p.Connected)

	bp.Pause()
	body := make([]byte, 256<<10)
	msgs := make([]publisher.Message, 64) // 16 MiB: more than the sockets hold
	for i := range msgs {
		msgs[i] = msg(randomName("big-"), "OT-2/v1")
		msgs[i].Body = body
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan []publisher.Result, 1)
	go func() {
		res, _ := p.Publish(ctx, msgs)
		results <- res
	}()
	waitFor(t, "the batch to reach the broker's socket", func() bool { return bp.Held() > 0 })

	cancel()
	if took := stop(); took > closeTimeout+2*time.Second {
		t.Fatalf("Run took %s to return with CloseTimeout %s", took, closeTimeout)
	} else {
		t.Logf("Run returned %s after its context ended", took)
	}
	select {
	case res := <-results:
		for _, r := range res {
			if r.Outcome != publisher.Failed {
				t.Fatalf("%s: %s, want failed: the broker read none of it", r.ID, r.Outcome)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish still stuck writing after Run returned")
	}
}

// A broker that accepts the TCP connection but never answers the AMQP
// handshake holds Run no longer than its context.
func TestRunEndsDuringAStalledHandshake(t *testing.T) {
	bp := newBlockingProxy(t)
	bp.Pause()
	p, stop := runUntil(t, publisher.Config{URL: bp.url(), Exchange: randomName("test-"), DialTimeout: time.Minute})
	waitFor(t, "the client to send its protocol header", func() bool { return bp.Held() > 0 })
	if took := stop(); took > 2*time.Second {
		t.Fatalf("Run took %s to return during the handshake (DialTimeout 1m)", took)
	}
	if p.Connected() {
		t.Fatal("connected without a handshake")
	}
}
