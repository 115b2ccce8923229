package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is one trigger handed to a Handler.
type Message struct {
	// Trigger is the message body, decoded.
	Trigger Trigger
	// MessageID is the AMQP message_id: the trigger's uuid.
	MessageID string
	// RoutingKey is the trigger's apiVersion with / as . ("OT-2.v1alpha1").
	RoutingKey string
	// Delivery counts the times this message was handed over: 1 the first
	// time, then one more after each failure, lost connection or crash of
	// a consumer holding it (the quorum queue's x-delivery-count + 1).
	Delivery int
	// Redelivered is the broker's flag: the message may have been handed
	// to a consumer before.
	Redelivered bool
	// Headers are the message's headers (apiVersion, protocol, source,
	// and traceparent and tracestate when the trigger was stored in a
	// trace).
	Headers map[string]any
}

// Handler does the work a trigger asks for. It returns nil once the work
// is done (recorded durably when it must survive a crash of the program):
// the message is then acknowledged and its message_id remembered, so a
// redelivery of it within the de-duplication window is acknowledged
// without calling the handler again. Any other error hands the message
// over again after a delay, up to ConsumeOptions.MaxDeliveries times in
// all, then dead-letters it; an error wrapped by Permanent dead-letters it
// at once. ctx ends when Consume's does. When the message carries a W3C
// traceparent header (the control-tower's publish span), ctx carries it
// as a remote OpenTelemetry span context: spans the handler starts join
// the trigger's trace, and rows it posts with ctx (Rows.Post, PostBatch)
// send it on to the data-gateway.
type Handler func(ctx context.Context, m Message) error

// permanentError marks a handler's error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the message is dead-lettered at once rather
// than handed over again.
func Permanent(err error) error { return permanentError{err} }

// ConsumeOptions configure Consume. Zero values take the defaults given.
type ConsumeOptions struct {
	// Queue is the durable quorum queue's name (required), e.g.
	// "ot2-robot-1": one queue per consumer program; instances of one
	// program sharing a queue share its messages.
	Queue string
	// Exchange is the topic exchange triggers are published to:
	// "triggers", the control-tower's AMQP_EXCHANGE.
	Exchange string
	// Prefetch is how many unacknowledged messages the broker hands over
	// at once (the channel's QoS): 16.
	Prefetch int
	// Concurrency is how many messages the handler works on at once: 1
	// (in the order the queue holds them).
	Concurrency int
	// MaxDeliveries is how many times a message is handed over before it
	// is dead-lettered to the queue "<Queue>.dead": 5. It counts failures
	// of the handler and crashes alike (the queue's x-delivery-limit is
	// MaxDeliveries-1). It is part of the queue's declaration: changing it
	// for an existing queue fails the declaration (PRECONDITION_FAILED)
	// until the queue is deleted.
	MaxDeliveries int
	// RetryMin and RetryMax bound the delay before a message whose handler
	// failed is handed over again: 1s, doubling per delivery, up to 30s.
	RetryMin, RetryMax time.Duration
	// DedupWindow is how long a handled message_id is remembered (1h),
	// DedupSize how many at most (100000; the oldest are forgotten first).
	// Memory only: a restarted program forgets them, so a handler whose
	// work must not repeat across restarts records message ids with it.
	DedupWindow time.Duration
	DedupSize   int
	// ReconnectMin and ReconnectMax bound the delay between attempts to
	// connect: 500ms doubling up to 30s, with jitter.
	ReconnectMin, ReconnectMax time.Duration
	// DialTimeout bounds connecting to one node, the AMQP handshake
	// included: 10s.
	DialTimeout time.Duration
	// TLS is the TLS configuration of amqps:// nodes (a private CA's
	// RootCAs, a client certificate); nil uses the system's roots
	// (SSL_CERT_FILE is honoured) and the node's host name.
	TLS *tls.Config
	// ConnectionName is shown by the broker's management tools: the queue
	// name by default.
	ConnectionName string
	// Logger receives the consumer's log lines: slog.Default() by default.
	Logger *slog.Logger
}

// DeadLetterName is the name of the exchange and the queue where Consume
// dead-letters the messages of queue: "<queue>.dead".
func DeadLetterName(queue string) string { return queue + ".dead" }

func (o ConsumeOptions) withDefaults() ConsumeOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Exchange == "" {
		o.Exchange = "triggers"
	}
	def(&o.Prefetch, 16)
	def(&o.Concurrency, 1)
	def(&o.MaxDeliveries, 5)
	def(&o.DedupSize, 100000)
	dur(&o.RetryMin, time.Second)
	dur(&o.RetryMax, 30*time.Second)
	dur(&o.DedupWindow, time.Hour)
	dur(&o.ReconnectMin, 500*time.Millisecond)
	dur(&o.ReconnectMax, 30*time.Second)
	dur(&o.DialTimeout, 10*time.Second)
	if o.ConnectionName == "" {
		o.ConnectionName = o.Queue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o ConsumeOptions) check() error {
	switch {
	case o.Queue == "":
		return errors.New("client: ConsumeOptions.Queue is required: the name of the consumer's durable queue")
	case strings.HasPrefix(o.Queue, "amq."):
		return fmt.Errorf("client: queue %q: names starting with amq. are the broker's", o.Queue)
	case o.Prefetch < 1 || o.Concurrency < 1 || o.MaxDeliveries < 1 || o.DedupSize < 1:
		return errors.New("client: ConsumeOptions: Prefetch, Concurrency, MaxDeliveries and DedupSize must be positive")
	case o.RetryMin < 0 || o.RetryMax < o.RetryMin || o.ReconnectMin < 0 || o.ReconnectMax < o.ReconnectMin:
		return errors.New("client: ConsumeOptions: want 0 <= RetryMin <= RetryMax and 0 <= ReconnectMin <= ReconnectMax")
	}
	return nil
}

// Nodes splits an AMQP_URL value, one broker node or a cluster's nodes
// comma-separated, into its URLs. The error names a bad entry by its
// position, never showing its password.
func Nodes(amqpURL string) ([]string, error) {
	parts := strings.Split(amqpURL, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		parts[i] = p
		if p == "" {
			return nil, fmt.Errorf("client: AMQP URL: node %d of %d is empty: want comma-separated amqp://user:password@host:port/vhost", i+1, len(parts))
		}
		if u, err := url.Parse(p); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Hostname() == "" {
			return nil, fmt.Errorf("client: AMQP URL: node %d of %d, %q: want amqp://user:password@host:port/vhost (or amqps://)", i+1, len(parts), redact(p))
		}
	}
	return parts, nil
}

// redact hides the password of an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable URL)"
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Consume receives the triggers published to opts.Exchange under binding
// (a topic binding key: "OT-2.v1alpha1.#" for every OT-2 v1alpha1
// trigger, "ChiBio.v1alpha1.ChiBio1" for one device) and calls handler
// with each, until ctx ends. amqpURL is one broker node or several
// comma-separated (AMQP_URL's form; amqps:// for TLS): the first that
// answers is used, and when its connection fails the next, round robin,
// after a backoff.
//
// On each connection it declares the durable topic exchange, the queue
// opts.Queue (durable, x-queue-type quorum, dead-lettering to
// "<Queue>.dead" after MaxDeliveries), the dead-letter exchange and queue,
// and binds the queue with binding. Messages are acknowledged only after
// the handler returned nil; see Handler for failures and duplicates. A
// message whose body is not a trigger is dead-lettered at once.
//
// Consume returns nil once ctx ends and the handlers running then have
// returned, or an error retrying cannot fix: bad options or URL, or a
// declaration the broker refuses (an existing queue declared with other
// arguments, an access refusal).
func Consume(ctx context.Context, amqpURL, binding string, handler Handler, opts ConsumeOptions) error {
	opts = opts.withDefaults()
	if err := opts.check(); err != nil {
		return err
	}
	if binding == "" {
		return errors.New("client: the binding key is empty: want e.g. OT-2.v1alpha1.#")
	}
	nodes, err := Nodes(amqpURL)
	if err != nil {
		return err
	}
	c := &consumer{
		opts:    opts,
		binding: binding,
		handler: handler,
		seen:    newSeen(opts.DedupWindow, opts.DedupSize),
		slots:   make(chan struct{}, opts.Concurrency),
		log:     opts.Logger.With("queue", opts.Queue),
	}
	// Readers of lost connections may still run a handler: wait for them.
	defer c.readers.Wait()
	reconnect := &backoff.ExponentialBackOff{
		InitialInterval: opts.ReconnectMin, MaxInterval: opts.ReconnectMax,
		Multiplier: 2, RandomizationFactor: 0.25,
	}
	reconnect.Reset()
	for i := 0; ; i++ {
		node := nodes[i%len(nodes)]
		consumed, err := c.session(ctx, node)
		if ctx.Err() != nil {
			return nil
		}
		if refused(err) {
			return fmt.Errorf("client: %s: %w", redact(node), err)
		}
		if consumed {
			reconnect.Reset()
		}
		delay := reconnect.NextBackOff()
		c.log.Warn("broker connection lost; reconnecting", "node", redact(node), "error", err, "retryIn", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// refused reports whether err is the broker refusing a declaration or
// access, which a reconnect would meet again.
func refused(err error) bool {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case amqp.PreconditionFailed, amqp.AccessRefused, amqp.NotAllowed, amqp.InvalidPath:
		return true
	}
	return false
}

type consumer struct {
	opts    ConsumeOptions
	binding string
	handler Handler
	seen    *seen
	// slots bounds the handlers running at once across connections: a
	// handler still running after its connection was lost keeps its slot.
	slots chan struct{}
	// readers are the goroutines reading deliveries, of every connection
	// (they run the handlers).
	readers sync.WaitGroup
	log     *slog.Logger
}

// session consumes over one connection to node until it fails or ctx
// ends. consumed reports whether it got as far as consuming.
func (c *consumer) session(ctx context.Context, node string) (consumed bool, err error) {
	conn, err := DialAMQP(ctx, node, DialOptions{Timeout: c.opts.DialTimeout, TLS: c.opts.TLS, ConnectionName: c.opts.ConnectionName})
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	if err := c.declare(ch); err != nil {
		return false, err
	}
	if err := ch.Qos(c.opts.Prefetch, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch: %w", err)
	}
	const tag = "routing-client"
	deliveries, err := ch.Consume(c.opts.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume %s: %w", c.opts.Queue, err)
	}
	c.log.Info("consuming", "node", redact(node), "binding", c.binding, "exchange", c.opts.Exchange)
	// gone is closed when this connection is lost: deliveries read from
	// it but not yet handed over are left to the broker, which hands
	// them over again.
	gone := make(chan struct{})
	defer close(gone)
	var readers sync.WaitGroup
	for range c.opts.Concurrency {
		readers.Add(1)
		c.readers.Add(1)
		go func() {
			defer c.readers.Done()
			defer readers.Done()
			for d := range deliveries {
				c.take(ctx, gone, d)
			}
		}()
	}
	select {
	case <-ctx.Done():
		// Stop the deliveries, let the handlers running finish and be
		// acknowledged, then close; unacknowledged prefetched messages go
		// back to the queue with the connection.
		_ = ch.Cancel(tag, false)
		readers.Wait()
		return true, nil
	case e := <-closed:
		if e == nil {
			return true, errors.New("connection closed")
		}
		return true, e
	}
}

// declare declares the exchange, the dead-letter exchange and queue, and
// the queue, and binds it.
func (c *consumer) declare(ch *amqp.Channel) error {
	o := c.opts
	dead := DeadLetterName(o.Queue)
	steps := []struct {
		what string
		do   func() error
	}{
		{"declare exchange " + o.Exchange, func() error {
			return ch.ExchangeDeclare(o.Exchange, amqp.ExchangeTopic, true, false, false, false, nil)
		}},
		{"declare dead-letter exchange " + dead, func() error {
			return ch.ExchangeDeclare(dead, amqp.ExchangeFanout, true, false, false, false, nil)
		}},
		{"declare dead-letter queue " + dead, func() error {
			_, err := ch.QueueDeclare(dead, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
			return err
		}},
		{"bind dead-letter queue " + dead, func() error { return ch.QueueBind(dead, "", dead, false, nil) }},
		{"declare queue " + o.Queue, func() error {
			_, err := ch.QueueDeclare(o.Queue, true, false, false, false, amqp.Table{
				amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
				"x-dead-letter-exchange": dead,
				"x-delivery-limit":       int64(o.MaxDeliveries - 1),
			})
			return err
		}},
		{"bind queue " + o.Queue + " to " + o.Exchange + " with " + c.binding, func() error {
			return ch.QueueBind(o.Queue, c.binding, o.Exchange, false, nil)
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// deliveryCount is a message's x-delivery-count header: the times it was
// handed over before.
func deliveryCount(h amqp.Table) int {
	switch v := h["x-delivery-count"].(type) {
	case int64:
		return int(v)
	case int32:
		return int(v)
	case int:
		return v
	case int16:
		return int(v)
	case int8:
		return int(v)
	case uint8:
		return int(v)
	}
	return 0
}

// take handles one delivery in a handler slot.
func (c *consumer) take(ctx context.Context, gone <-chan struct{}, d amqp.Delivery) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return // the message goes back to the queue with the connection
	case <-gone:
		return
	}
	defer func() { <-c.slots }()
	select {
	case <-gone:
		return
	default:
	}
	log := c.log.With("messageId", d.MessageId, "routingKey", d.RoutingKey)
	m := Message{
		MessageID:   d.MessageId,
		RoutingKey:  d.RoutingKey,
		Delivery:    deliveryCount(d.Headers) + 1,
		Redelivered: d.Redelivered,
		Headers:     d.Headers,
	}
	t, err := DecodeTrigger(d.Body)
	if err != nil {
		log.Error("message is not a trigger; dead-lettered", "error", err, "deadLetterQueue", DeadLetterName(c.opts.Queue))
		_ = d.Reject(false)
		return
	}
	m.Trigger = t
	id := d.MessageId
	if id == "" {
		id = t.UUID
	}
	for {
		handled, wait := c.seen.begin(id)
		if handled {
			log.Debug("duplicate of a handled message; acknowledged without handling")
			_ = d.Ack(false)
			return
		}
		if wait == nil {
			break
		}
		// Another delivery of it (from before a reconnect) is being
		// handled: its outcome decides.
		select {
		case <-wait:
		case <-ctx.Done():
			return
		}
	}
	err = c.call(withTrace(ctx, d.Headers), m)
	c.seen.end(id, err == nil)
	if err == nil {
		if aerr := d.Ack(false); aerr != nil {
			log.Debug("acknowledgement lost with the connection; the redelivery will be acknowledged as a duplicate", "error", aerr)
		}
		return
	}
	if ctx.Err() != nil {
		// Shutting down: the message goes back to the queue with the
		// connection, uncounted as a failure of the handler.
		log.Info("handler stopped by shutdown; the message will be delivered again", "error", err)
		return
	}
	var perm permanentError
	if errors.As(err, &perm) || m.Delivery >= c.opts.MaxDeliveries {
		log.Error("handler failed; message dead-lettered", "error", err, "delivery", m.Delivery,
			"maxDeliveries", c.opts.MaxDeliveries, "deadLetterQueue", DeadLetterName(c.opts.Queue))
		_ = d.Reject(false)
		return
	}
	delay := c.opts.RetryMin << min(m.Delivery-1, 30)
	if delay > c.opts.RetryMax || delay < 0 {
		delay = c.opts.RetryMax
	}
	log.Warn("handler failed; the message will be handed over again", "error", err, "delivery", m.Delivery,
		"maxDeliveries", c.opts.MaxDeliveries, "retryIn", delay)
	// The slot is freed now; the message is returned to the queue after
	// the delay (or with the connection, if it goes first).
	time.AfterFunc(delay, func() { _ = d.Nack(false, true) })
}

// call runs the handler, turning a panic into a failure of this message.
func (c *consumer) call(ctx context.Context, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.handler(ctx, m)
}
