// Package publisher publishes protocol triggers to RabbitMQ (AMQP 0-9-1,
// github.com/rabbitmq/amqp091-go): a durable topic exchange, the routing
// key derived from the trigger's apiVersion, persistent messages sent with
// mandatory, and publisher confirms with many messages in flight. It keeps
// its connection up, reconnecting with backoff, and follows the broker's
// connection.blocked/unblocked notifications (a resource alarm). Given
// the nodes of a RabbitMQ cluster, it connects to the first that answers
// and, when that connection fails, moves on to the next one in turn.
//
// Nothing it does outlives its context by more than Config.CloseTimeout:
// dialling, the channel set-up, a publish stuck on a socket the broker no
// longer reads, the wait for confirms and the closing handshake are all
// cut short when the context ends.
package publisher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/internal/defaults"
	"github.com/routinglayer/routing/host/internal/retry"
	"github.com/routinglayer/routing/sdk/client"
)

// ErrNotConnected is returned by Publish while there is no connection.
var ErrNotConnected = errors.New("not connected to the broker")

// ErrBlocked is returned by Publish, and set in the Result of each message
// it did not send, while the broker blocks the connection.
var ErrBlocked = errors.New("the broker blocked the connection")

// Config configures a Publisher.
type Config struct {
	// URLs are the broker's nodes, e.g. amqp://guest:guest@127.0.0.1:5672/,
	// tried in turn: a failed dial or a lost connection moves on to the
	// next, round robin.
	URLs []string
	// URL is a single node, used when URLs is empty.
	URL string
	// Exchange is the topic exchange; default "triggers".
	Exchange string
	// ConnectionName names the connection in the broker's management
	// tools; default "control-tower".
	ConnectionName string
	// MaxInFlight bounds unconfirmed messages; default 256.
	MaxInFlight int
	// ConfirmTimeout bounds the wait for one confirm; default 30s.
	ConfirmTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay; defaults 200ms
	// and 15s.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds connecting, the AMQP handshake included; default
	// 10s.
	DialTimeout time.Duration
	// CloseTimeout bounds the closing handshake once Run's context ends;
	// default 5s. A blocked connection is closed at once: the broker
	// reads nothing from it, so it cannot answer.
	CloseTimeout time.Duration
}

// DefaultConfig holds the publisher's defaults: New gives each unset
// field of a Config its value here (see defaults.Fill), and MaxBackoff
// at least MinBackoff.
func DefaultConfig() Config {
	return Config{
		Exchange:       "triggers",
		ConnectionName: "control-tower",
		MaxInFlight:    256,
		ConfirmTimeout: 30 * time.Second,
		MinBackoff:     200 * time.Millisecond,
		MaxBackoff:     15 * time.Second,
		DialTimeout:    10 * time.Second,
		CloseTimeout:   5 * time.Second,
	}
}

// Message is one trigger to publish.
type Message struct {
	ID         string // the trigger's uuid: the message id
	APIVersion string
	Protocol   string
	Source     string
	Body       []byte
	Timestamp  time.Time
	// TraceParent and TraceState are the W3C trace context of the
	// message's publish span, sent as the traceparent and tracestate
	// headers when set, so that a consumer continues the trace.
	TraceParent, TraceState string
}

// Outcome is what became of a published message.
type Outcome int

// The outcomes.
const (
	// Failed: nacked, not confirmed in time, or the connection was lost
	// before the confirm. Publish it again.
	Failed Outcome = iota
	// Published: the broker confirmed it and routed it to a queue.
	Published
	// Unroutable: the broker confirmed it but no queue is bound for it.
	Unroutable
)

func (o Outcome) String() string {
	return [...]string{"failed", "published", "unroutable"}[o]
}

// Result is the outcome of one message.
type Result struct {
	ID      string
	Outcome Outcome
	Err     error
}

// Publisher publishes messages on one confirm-mode channel.
type Publisher struct {
	cfg Config
	log hclog.Logger

	connected atomic.Bool
	// node is the index in cfg.URLs of the node dialled last.
	node atomic.Int64
	// blocked holds the broker's reason while it blocks the connection.
	blocked atomic.Pointer[string]

	mu      sync.Mutex // guards ch and returns
	ch      *amqp.Channel
	returns chan amqp.Return

	// publishMu makes Publish calls take turns, so at most MaxInFlight
	// messages are unconfirmed and the returns buffer never fills; it also
	// guards returned.
	publishMu sync.Mutex
	returned  map[string]int // message id -> returns not yet matched
}

// New returns a Publisher; Run connects it.
func New(cfg Config, log hclog.Logger) *Publisher {
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{cfg.URL}
	}
	d := DefaultConfig()
	defaults.Fill(&cfg, d)
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(d.MaxBackoff, cfg.MinBackoff)
	}
	return &Publisher{cfg: cfg, log: log.Named("publisher"), returned: make(map[string]int)}
}

// RoutingKey is the routing key of an apiVersion: "/" becomes ".".
func RoutingKey(apiVersion string) string { return strings.ReplaceAll(apiVersion, "/", ".") }

// Connected reports whether a channel is up. A blocked connection is
// still connected.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Exchange is the exchange triggers are published to.
func (p *Publisher) Exchange() string { return p.cfg.Exchange }

// Node is the broker node in use, its password redacted, or "" while not
// connected.
func (p *Publisher) Node() string {
	if !p.Connected() {
		return ""
	}
	return Redact(p.cfg.URLs[p.node.Load()])
}

// Blocked reports whether the broker blocks the connection and the reason
// it gave (e.g. "low on memory", "low on disk space"). RabbitMQ blocks a
// connection during a resource alarm once it publishes; until the
// unblocked notification nothing sent on it is read, so publishes wait and
// confirms do not come.
func (p *Publisher) Blocked() (reason string, blocked bool) {
	if r := p.blocked.Load(); r != nil {
		return *r, true
	}
	return "", false
}

func (p *Publisher) setBlocked(b amqp.Blocking) {
	if !b.Active {
		if p.blocked.Swap(nil) != nil {
			p.log.Info("the broker unblocked the connection")
		}
		return
	}
	reason := cmp.Or(b.Reason, "no reason given")
	p.blocked.Store(&reason)
	p.log.Warn("the broker blocked the connection: publishing waits until it unblocks it", "reason", reason)
}

// Run keeps a connection and a confirm-mode channel up until ctx is done.
// It dials the nodes in turn, starting with the first: after a failed
// dial or a lost connection it waits the backoff, then dials the next.
func (p *Publisher) Run(ctx context.Context) error {
	// The reconnect delay doubles from MinBackoff to MaxBackoff, with up
	// to 25% jitter, and starts again from MinBackoff after a connection
	// that got as far as serving.
	reconnect := retry.Policy{Min: p.cfg.MinBackoff, Max: p.cfg.MaxBackoff, Jitter: 0.25}.Backoff()
	for node := 0; ctx.Err() == nil; node = (node + 1) % len(p.cfg.URLs) {
		p.node.Store(int64(node))
		up, err := p.session(ctx, p.cfg.URLs[node])
		if ctx.Err() != nil {
			break
		}
		if up {
			reconnect.Reset()
		}
		wait := reconnect.NextBackOff()
		next := p.cfg.URLs[(node+1)%len(p.cfg.URLs)]
		p.log.Warn("broker connection down; reconnecting", "error", err, "in", wait, "next", Redact(next))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	p.log.Info("publisher stopped")
	return nil
}

// session connects, serves until the connection or channel closes or ctx
// ends, and reports whether it got as far as serving. It returns within
// CloseTimeout of ctx ending, whatever the broker does.
func (p *Publisher) session(ctx context.Context, uri string) (bool, error) {
	conn, err := client.DialAMQP(ctx, uri, client.DialOptions{Timeout: p.cfg.DialTimeout, ConnectionName: p.cfg.ConnectionName})
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", Redact(uri), err)
	}
	notices := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	// Once ctx ends the connection is closed at once, from here, which
	// also ends a channel set-up call or a publish waiting on it.
	closed := make(chan struct{})
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		p.close(conn, notices)
	})
	defer func() {
		if stopClose() {
			p.close(conn, notices)
		} else {
			<-closed
		}
		p.blocked.Store(nil) // after the close, which reads it
	}()
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return false, fmt.Errorf("confirm mode: %w", err)
	}
	if err := ch.ExchangeDeclare(p.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return false, fmt.Errorf("declare exchange %q: %w", p.cfg.Exchange, err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, p.cfg.MaxInFlight+16))
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))

	p.mu.Lock()
	p.ch, p.returns = ch, returns
	p.mu.Unlock()
	p.connected.Store(true)
	p.log.Info("connected to the broker", "url", Redact(uri), "exchange", p.cfg.Exchange)
	defer func() {
		p.connected.Store(false)
		p.mu.Lock()
		p.ch, p.returns = nil, nil
		p.mu.Unlock()
	}()

	blocks := notices
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case b, ok := <-blocks:
			if !ok {
				blocks = nil // the connection is closing: connClosed tells why
				continue
			}
			p.setBlocked(b)
		case e := <-connClosed:
			return true, fmt.Errorf("connection closed: %v", e)
		case e := <-chClosed:
			return true, fmt.Errorf("channel closed: %v", e)
		}
	}
}

// close closes conn within CloseTimeout, at once if the broker blocks it.
// The deadline applies to the socket, so a publish stuck writing to it
// fails then too. Channels are not closed one by one: closing the
// connection closes them, and a channel's own close would wait for an
// answer a blocked broker never sends. notices, conn's blocked
// notifications, are read meanwhile: the client waits for a reader of
// each before it reads on.
func (p *Publisher) close(conn *amqp.Connection, notices <-chan amqp.Blocking) {
	go func() {
		for range notices { // until the client closes it, at the connection's end
		}
	}()
	deadline := time.Now().Add(p.cfg.CloseTimeout)
	if reason, blocked := p.Blocked(); blocked {
		p.log.Warn("closing a blocked connection without the closing handshake; messages not confirmed yet fail", "reason", reason)
		deadline = time.Now()
	}
	if err := conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp.ErrClosed) {
		p.log.Debug("broker connection closed uncleanly", "error", err)
	}
}

// Publish sends msgs with confirms, at most MaxInFlight unconfirmed at a
// time, and returns one Result per message in the same order once each is
// settled. Without a connection it fails at once with ErrNotConnected,
// on a blocked one with ErrBlocked; once the broker blocks the connection
// mid-batch, the messages not yet sent fail with ErrBlocked, and those
// sent wait for their confirms (the broker sends them once it unblocks
// the connection). When ctx ends, Publish stops sending and stops waiting:
// the messages not confirmed by then fail with ctx's error. A send stuck
// on a socket the broker does not read ends when Run's context ends, which
// closes the connection.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) ([]Result, error) {
	p.publishMu.Lock()
	defer p.publishMu.Unlock()
	p.mu.Lock()
	ch, returns := p.ch, p.returns
	p.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("publish: %w", ErrNotConnected)
	}
	if reason, blocked := p.Blocked(); blocked {
		return nil, fmt.Errorf("publish: %w (%s)", ErrBlocked, reason)
	}

	results := make([]Result, len(msgs))
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	notSent := make([]error, len(msgs))
	for i, m := range msgs {
		if i >= p.cfg.MaxInFlight {
			j := i - p.cfg.MaxInFlight
			results[j] = p.settle(ctx, msgs[j], confirms[j], notSent[j], returns)
		}
		if reason, blocked := p.Blocked(); blocked {
			notSent[i] = fmt.Errorf("not sent: %w (%s)", ErrBlocked, reason)
			continue
		}
		headers := amqp.Table{"apiVersion": m.APIVersion, "protocol": m.Protocol, "source": m.Source}
		if m.TraceParent != "" {
			headers["traceparent"] = m.TraceParent
			if m.TraceState != "" {
				headers["tracestate"] = m.TraceState
			}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, RoutingKey(m.APIVersion), true, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    m.ID,
			Type:         "protocol",
			AppId:        "control-tower",
			Timestamp:    m.Timestamp,
			Headers:      headers,
			Body:         m.Body,
		})
		if err != nil {
			p.log.Debug("publish failed", "id", m.ID, "error", err)
			notSent[i] = fmt.Errorf("not sent: %w", err)
			continue
		}
		confirms[i] = dc
	}
	for j := max(0, len(msgs)-p.cfg.MaxInFlight); j < len(msgs); j++ {
		results[j] = p.settle(ctx, msgs[j], confirms[j], notSent[j], returns)
	}
	return results, nil
}

// settle waits for one message's confirm and tells its outcome; dc is nil
// for a message that was not sent, for the reason notSent.
func (p *Publisher) settle(ctx context.Context, m Message, dc *amqp.DeferredConfirmation, notSent error, returns chan amqp.Return) Result {
	if dc == nil {
		return Result{ID: m.ID, Outcome: Failed, Err: notSent}
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.ConfirmTimeout)
	defer cancel()
	acked, err := dc.WaitContext(wctx)
	if err != nil {
		return Result{ID: m.ID, Outcome: Failed, Err: fmt.Errorf("wait for confirm: %w", err)}
	}
	// The broker sends a mandatory message's return before its ack, and
	// the client hands the return over before it processes the ack: it is
	// in the channel by now.
	// The client closes the channel when the connection goes: stop there.
	for drained := false; !drained; {
		select {
		case r, ok := <-returns:
			if !ok {
				drained = true
				break
			}
			p.returned[r.MessageId]++
		default:
			drained = true
		}
	}
	if n := p.returned[m.ID]; n > 0 {
		if n == 1 {
			delete(p.returned, m.ID)
		} else {
			p.returned[m.ID] = n - 1
		}
		return Result{ID: m.ID, Outcome: Unroutable}
	}
	if !acked {
		return Result{ID: m.ID, Outcome: Failed, Err: errors.New("nacked by the broker, or the connection was lost before the confirm")}
	}
	return Result{ID: m.ID, Outcome: Published}
}

// Redact hides the password of a broker URL for logs and errors; an
// unparsable one loses all it has before its host.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if scheme, _, ok := strings.Cut(raw, "://"); ok && len(scheme) < at {
			return scheme + "://xxxxx" + raw[at:]
		}
		return "xxxxx" + raw[at:]
	}
	return raw
}

// RedactNodes is the broker nodes, passwords hidden, comma-separated.
func RedactNodes(nodes []string) string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = Redact(n)
	}
	return strings.Join(out, ",")
}
