// Package publisher publishes protocol triggers to RabbitMQ (AMQP 0-9-1,
// github.com/rabbitmq/amqp091-go): a durable topic exchange, the routing
// key derived from the trigger's apiVersion, persistent messages sent with
// mandatory, and publisher confirms with many messages in flight. It keeps
// its connection up, reconnecting with backoff.
package publisher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNotConnected is returned by Publish while there is no connection.
var ErrNotConnected = errors.New("not connected to the broker")

// Config configures a Publisher.
type Config struct {
	// URL is the broker, e.g. amqp://guest:guest@127.0.0.1:5672/.
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
}

// Message is one trigger to publish.
type Message struct {
	ID         string // the trigger's uuid: the message id
	APIVersion string
	Protocol   string
	Source     string
	Body       []byte
	Timestamp  time.Time
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
	if cfg.Exchange == "" {
		cfg.Exchange = "triggers"
	}
	if cfg.ConnectionName == "" {
		cfg.ConnectionName = "control-tower"
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(15*time.Second, cfg.MinBackoff)
	}
	return &Publisher{cfg: cfg, log: log.Named("publisher"), returned: make(map[string]int)}
}

// RoutingKey is the routing key of an apiVersion: "/" becomes ".".
func RoutingKey(apiVersion string) string { return strings.ReplaceAll(apiVersion, "/", ".") }

// Connected reports whether a channel is up.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Run keeps a connection and a confirm-mode channel up until ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	delay := p.cfg.MinBackoff
	for ctx.Err() == nil {
		up, err := p.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if up {
			delay = p.cfg.MinBackoff
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)/4+1))
		p.log.Warn("broker connection down; reconnecting", "error", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		delay = min(delay*2, p.cfg.MaxBackoff)
	}
	p.log.Info("publisher stopped")
	return nil
}

// session connects, serves until the connection or channel closes or ctx
// ends, and reports whether it got as far as serving.
func (p *Publisher) session(ctx context.Context) (bool, error) {
	conn, err := amqp.DialConfig(p.cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": p.cfg.ConnectionName},
		Dial:       amqp.DefaultDial(10 * time.Second),
	})
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", redact(p.cfg.URL), err)
	}
	defer conn.Close()
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
	p.log.Info("connected to the broker", "url", redact(p.cfg.URL), "exchange", p.cfg.Exchange)
	defer func() {
		p.connected.Store(false)
		p.mu.Lock()
		p.ch, p.returns = nil, nil
		p.mu.Unlock()
	}()

	select {
	case <-ctx.Done():
		return true, nil
	case e := <-connClosed:
		return true, fmt.Errorf("connection closed: %v", e)
	case e := <-chClosed:
		return true, fmt.Errorf("channel closed: %v", e)
	}
}

// Publish sends msgs with confirms, at most MaxInFlight unconfirmed at a
// time, and returns one Result per message in the same order once each is
// settled. Without a connection it fails at once with ErrNotConnected.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) ([]Result, error) {
	p.publishMu.Lock()
	defer p.publishMu.Unlock()
	p.mu.Lock()
	ch, returns := p.ch, p.returns
	p.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("publish: %w", ErrNotConnected)
	}

	results := make([]Result, len(msgs))
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		if i >= p.cfg.MaxInFlight {
			j := i - p.cfg.MaxInFlight
			results[j] = p.settle(ctx, msgs[j], confirms[j], returns)
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, RoutingKey(m.APIVersion), true, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    m.ID,
			Type:         "protocol",
			AppId:        "control-tower",
			Timestamp:    m.Timestamp,
			Headers:      amqp.Table{"apiVersion": m.APIVersion, "protocol": m.Protocol, "source": m.Source},
			Body:         m.Body,
		})
		if err != nil {
			p.log.Debug("publish failed", "id", m.ID, "error", err)
			continue // settle reports it failed
		}
		confirms[i] = dc
	}
	for j := max(0, len(msgs)-p.cfg.MaxInFlight); j < len(msgs); j++ {
		results[j] = p.settle(ctx, msgs[j], confirms[j], returns)
	}
	return results, nil
}

// settle waits for one message's confirm and tells its outcome.
func (p *Publisher) settle(ctx context.Context, m Message, dc *amqp.DeferredConfirmation, returns chan amqp.Return) Result {
	if dc == nil {
		return Result{ID: m.ID, Outcome: Failed, Err: errors.New("not sent: the channel refused it")}
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

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
