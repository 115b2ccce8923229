package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/propagation"
)

// Row is one data row for a trigger: Index is the well (nil for a
// protocol without wells), Data a JSON object of camelCase keys whose
// values are strings, numbers, booleans or null. Data is encoded with
// encoding/json: a map's keys in sorted order, a struct's in field order,
// a json.RawMessage as it is (keys and values byte for byte).
type Row struct {
	Index *int `json:"index,omitempty"`
	Data  any  `json:"data"`
}

// Well returns a pointer to i, for Row.Index.
func Well(i int) *int { return &i }

// Accepted is the data-gateway's answer to an accepted batch.
type Accepted struct {
	// ID is the delivery's id (GET /data/{id} shows its progress).
	ID   int64  `json:"id"`
	UUID string `json:"uuid"`
	// Rows is the number of rows accepted.
	Rows    int      `json:"rows"`
	Pushers []string `json:"pushers"`
	// Replayed is set when the gateway had stored the batch already under
	// its Idempotency-Key (an earlier attempt whose answer was lost) and
	// answered with the original result.
	Replayed bool `json:"-"`
}

// RowsOptions configure a Rows poster. Zero values take the defaults
// given.
type RowsOptions struct {
	// URL is the data-gateway's base URL (required), e.g.
	// http://127.0.0.1:8001 or https://gateway.lab:8001.
	URL string
	// Token is sent as "Authorization: Bearer <Token>": one of the
	// gateway's API_TOKENS, when it has tokens.
	Token string
	// CAFile is a PEM bundle of the certificate authorities an https
	// gateway's certificate is checked against, beside the system's
	// (SSL_CERT_FILE is honoured too). Ignored when Client is set.
	CAFile string
	// Client sends the requests: a client with CAFile's roots by default.
	Client *http.Client
	// BatchRows and BatchBytes bound one request: 500 rows, 4 MiB of
	// rows as encoded (below the gateway's MAX_ROWS_PER_REQUEST and
	// MAX_BODY_BYTES defaults).
	BatchRows  int
	BatchBytes int
	// BatchDelay bounds how long a row waits for its batch to fill before
	// the batch is sent: 1s.
	BatchDelay time.Duration
	// QueueRows bounds the rows waiting to be sent: 100000; Add blocks
	// while the queue is full.
	QueueRows int
	// RetryMin and RetryMax bound the delay between attempts of one
	// batch: 500ms doubling up to 30s, with jitter; a Retry-After of the
	// gateway's is waited for instead.
	RetryMin, RetryMax time.Duration
	// GiveUpAfter ends the retries of a batch this long after its first
	// attempt, with a *BatchError; 0, the default, retries until the
	// poster is closed.
	GiveUpAfter time.Duration
	// RequestTimeout bounds one request: 30s.
	RequestTimeout time.Duration
	// Logger receives the poster's log lines: slog.Default() by default.
	Logger *slog.Logger
}

// BatchError is a batch the gateway refused (a 4xx other than 408, 409,
// 425 and 429) or whose retries were given up: none of its rows is known
// to be stored. Key is the batch's Idempotency-Key: posting the same body
// under it again cannot store it twice.
type BatchError struct {
	UUID string
	Key  string
	Rows []Row
	// Status is the last answer's HTTP status, 0 for a network error.
	Status int
	// Detail is the gateway's problem detail, naming the field at fault.
	Detail   string
	Attempts int
	Err      error
}

func (e *BatchError) Error() string {
	msg := fmt.Sprintf("client: batch of %d rows for %s (Idempotency-Key %s) not delivered after %d attempts", len(e.Rows), e.UUID, e.Key, e.Attempts)
	if e.Status != 0 {
		msg += fmt.Sprintf(": %d", e.Status)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *BatchError) Unwrap() error { return e.Err }

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("client: rows poster closed")

// batch is the rows of one uuid sent in one request, under one key.
type batch struct {
	uuid    string
	key     string
	rows    []Row
	encoded []json.RawMessage
	bytes   int
	due     time.Time // sealed at the latest then
	body    []byte    // set when sealed
}

// Rows posts data rows to the data-gateway's POST /data/batch. Rows added
// for a uuid are sent in the order added, in batches of up to BatchRows
// rows, each sent at the latest BatchDelay after its first row; one
// sender posts the batches one after the other. A batch is retried with
// backoff on network errors, 408, 409 (its key still in flight), 425,
// 429 and 5xx, waiting for Retry-After when the gateway sends one, under
// the same Idempotency-Key, so the gateway stores it once however often
// it is sent. A batch the gateway refuses, or whose retries are given up
// (GiveUpAfter), stops the poster: the error is returned by the next Add,
// Flush and Close, and the rows not delivered by Unsent. A Rows is safe
// for concurrent use.
type Rows struct {
	opts     RowsOptions
	endpoint string
	client   *http.Client
	log      *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	open    map[string]*batch
	sealed  []*batch // in sending order; sealed[0] may be in flight
	queued  int      // rows in open and sealed batches
	err     error    // sticky: a batch given up
	closing bool
	stopped bool            // the sender has returned
	ctx     context.Context // the sender's; cancelled by Close's deadline
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewRows returns a poster; its sender runs until Close.
func NewRows(opts RowsOptions) (*Rows, error) {
	if opts.URL == "" {
		return nil, errors.New("client: RowsOptions.URL is required: the data-gateway's base URL, e.g. http://127.0.0.1:8001")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: RowsOptions.URL %q: want http(s)://host:port", opts.URL)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.BatchRows, 500)
	def(&opts.BatchBytes, 4<<20)
	def(&opts.QueueRows, 100000)
	dur(&opts.BatchDelay, time.Second)
	dur(&opts.RetryMin, 500*time.Millisecond)
	dur(&opts.RetryMax, 30*time.Second)
	dur(&opts.RequestTimeout, 30*time.Second)
	if opts.RetryMax < opts.RetryMin {
		return nil, errors.New("client: RowsOptions: want RetryMin <= RetryMax")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.Client
	if client == nil {
		if client, err = httpClient(opts.CAFile); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Rows{
		opts:     opts,
		endpoint: strings.TrimSuffix(opts.URL, "/") + "/data/batch",
		client:   client,
		log:      opts.Logger,
		changed:  make(chan struct{}),
		open:     map[string]*batch{},
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go p.run()
	return p, nil
}

// httpClient is a client trusting the system's roots and those of caFile.
func httpClient(caFile string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("client: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: CA file %s: no PEM certificate in it", caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}, nil
}

// notify wakes whoever waits for a change; p.mu is held.
func (p *Rows) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// await waits for the next change or for ctx to end, and returns ctx's
// error if it ended. p.mu is held when it is called and when it returns,
// and released meanwhile.
func (p *Rows) await(ctx context.Context) error {
	wait := p.changed
	p.mu.Unlock()
	defer p.mu.Lock()
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Add queues rows for the trigger uuid. It returns once they are queued
// (blocking while QueueRows rows wait), not once they are delivered; see
// Flush. Its error is a row the gateway would refuse (a negative index;
// data not a non-empty object of camelCase keys with string, number,
// boolean or null values: then none is queued), the poster's sticky error (a *BatchError), ErrClosed,
// or ctx's (then the rows before the first that found the queue full are
// queued).
func (p *Rows) Add(ctx context.Context, uuid string, rows ...Row) error {
	if uuid == "" {
		return errors.New("client: Add: the uuid is empty: want the trigger's uuid")
	}
	encoded := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		b, err := encodeRow(r)
		if err != nil {
			return fmt.Errorf("client: row %d: %w", i, err)
		}
		encoded[i] = b
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < len(rows); {
		if err := p.usable(); err != nil {
			return err
		}
		if p.queued >= p.opts.QueueRows {
			p.notify() // the sender may have batches to send
			if err := p.await(ctx); err != nil {
				return err
			}
			continue
		}
		b := p.open[uuid]
		if b == nil {
			b = &batch{uuid: uuid, key: newKey(), due: time.Now().Add(p.opts.BatchDelay)}
			p.open[uuid] = b
		}
		b.rows = append(b.rows, rows[i])
		b.encoded = append(b.encoded, encoded[i])
		b.bytes += len(encoded[i]) + 1
		p.queued++
		i++
		if len(b.rows) >= p.opts.BatchRows || b.bytes >= p.opts.BatchBytes {
			p.seal(b)
			p.notify()
		}
	}
	p.notify()
	return nil
}

var camelCase = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// encodeRow encodes r as the gateway takes it, checking what would make
// the gateway refuse it (and stop the poster) at once: a negative index,
// data that is not a non-empty object of camelCase keys with string,
// number, boolean or null values.
func encodeRow(r Row) (json.RawMessage, error) {
	if r.Index != nil && *r.Index < 0 {
		return nil, fmt.Errorf("index %d: want 0 or more", *r.Index)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Data json.RawMessage `json:"data"`
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &probe) != nil || len(probe.Data) == 0 || probe.Data[0] != '{' || json.Unmarshal(probe.Data, &fields) != nil {
		return nil, fmt.Errorf("data must encode as a JSON object, not %s", probe.Data)
	}
	if len(fields) == 0 {
		return nil, errors.New("data is empty: want at least one key")
	}
	for k, v := range fields {
		if !camelCase.MatchString(k) {
			return nil, fmt.Errorf("data key %q: want camelCase (^[a-z][a-zA-Z0-9]*$)", k)
		}
		if v[0] == '{' || v[0] == '[' {
			return nil, fmt.Errorf("data.%s: want a string, number, boolean or null, not an object or array", k)
		}
	}
	return b, nil
}

// usable is the error Add meets now, or nil; p.mu is held.
func (p *Rows) usable() error {
	switch {
	case p.err != nil:
		return p.err
	case p.closing:
		return ErrClosed
	}
	return nil
}

// seal moves an open batch to the send queue; p.mu is held.
func (p *Rows) seal(b *batch) {
	delete(p.open, b.uuid)
	b.build()
	p.sealed = append(p.sealed, b)
}

// build makes the request body of the batch's rows.
func (b *batch) build() {
	var buf bytes.Buffer
	buf.WriteString(`{"uuid":`)
	u, _ := json.Marshal(b.uuid)
	buf.Write(u)
	buf.WriteString(`,"rows":[`)
	for i, r := range b.encoded {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(r)
	}
	buf.WriteString("]}")
	b.body, b.encoded = buf.Bytes(), nil
}

// Flush sends every row added so far without waiting for its batch to
// fill, and returns once all are delivered: nil, or the poster's sticky
// error, or ctx's (the rows stay queued).
func (p *Rows) Flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.open {
		p.seal(b)
	}
	p.notify()
	for p.err == nil && p.queued > 0 {
		if p.stopped {
			return fmt.Errorf("client: %d rows not delivered (see Unsent): %w", p.queued, ErrClosed)
		}
		if err := p.await(ctx); err != nil {
			return err
		}
	}
	return p.err
}

// Close flushes (see Flush) and stops the poster; Add then returns
// ErrClosed. When ctx ends first, the batch in flight is abandoned (the
// gateway may have stored it) and Close returns an error counting the
// rows not known to be delivered, which Unsent lists.
func (p *Rows) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	p.mu.Lock()
	p.closing = true
	p.notify()
	p.mu.Unlock()
	p.cancel()
	<-p.done
	if err == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return p.err
	case p.queued == 0:
		return nil
	case errors.Is(err, ErrClosed):
		return err
	}
	return fmt.Errorf("client: closed with %d rows not delivered (see Unsent): %w", p.queued, err)
}

// Unsent returns the rows not delivered, per uuid in the order added: the
// batch given up first, when there is one. Meant for after an error.
func (p *Rows) Unsent() map[string][]Row {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]Row{}
	for _, b := range p.sealed {
		out[b.uuid] = append(out[b.uuid], b.rows...)
	}
	for _, b := range p.open {
		out[b.uuid] = append(out[b.uuid], b.rows...)
	}
	return out
}

// run is the sender: it seals due batches and posts the sealed ones in
// order until closed.
func (p *Rows) run() {
	defer func() {
		p.mu.Lock()
		p.stopped = true
		p.notify()
		p.mu.Unlock()
		close(p.done)
	}()
	for {
		p.mu.Lock()
		now := time.Now()
		next := time.Time{}
		for _, b := range p.open {
			if !b.due.After(now) {
				p.seal(b)
			} else if next.IsZero() || b.due.Before(next) {
				next = b.due
			}
		}
		if p.closing && (len(p.sealed) == 0 || p.err != nil) {
			p.mu.Unlock()
			return
		}
		if len(p.sealed) == 0 || p.err != nil {
			wait := p.changed
			p.mu.Unlock()
			var (
				timer *time.Timer
				fire  <-chan time.Time
			)
			if !next.IsZero() {
				timer = time.NewTimer(time.Until(next))
				fire = timer.C
			}
			select {
			case <-wait:
			case <-fire:
			case <-p.ctx.Done():
			}
			if timer != nil {
				timer.Stop()
			}
			if p.ctx.Err() != nil {
				return
			}
			continue
		}
		b := p.sealed[0]
		p.mu.Unlock()

		_, err := p.send(p.ctx, b)
		if p.ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		if err != nil {
			p.err = err
			p.log.Error("rows not delivered; the poster stops", "uuid", b.uuid, "rows", len(b.rows), "idempotencyKey", b.key, "error", err)
		} else {
			p.sealed = p.sealed[1:]
			p.queued -= len(b.rows)
		}
		p.notify()
		p.mu.Unlock()
	}
}

// Post sends rows for uuid now, in batches of up to BatchRows rows, each
// with its retries, and returns the gateway's answers once all are
// accepted, or the first batch's error (a *BatchError, or ctx's; earlier
// batches are stored). It does not wait for rows queued by Add.
func (p *Rows) Post(ctx context.Context, uuid string, rows []Row) ([]Accepted, error) {
	var out []Accepted
	for len(rows) > 0 {
		n := min(len(rows), p.opts.BatchRows)
		b := &batch{uuid: uuid, key: newKey()}
		for i, r := range rows[:n] {
			enc, err := encodeRow(r)
			if err != nil {
				return out, fmt.Errorf("client: row %d: %w", len(out)*p.opts.BatchRows+i, err)
			}
			b.rows, b.encoded = append(b.rows, r), append(b.encoded, enc)
		}
		b.build()
		acc, err := p.send(ctx, b)
		if err != nil {
			return out, err
		}
		out = append(out, acc)
		rows = rows[n:]
	}
	return out, nil
}

// PostBatch sends rows for uuid now as one batch under key, the
// caller's Idempotency-Key (1-255 visible ASCII characters), with its
// retries, and returns the gateway's answer. A key the caller derives
// from where the rows came from (a file and offset, say) makes a batch
// sent again after a restart of the program stored once too, within the
// gateway's IDEMPOTENCY_TTL; the same key with other rows is refused
// (a *BatchError with Status 422). It does not wait for rows queued by
// Add.
func (p *Rows) PostBatch(ctx context.Context, key, uuid string, rows []Row) (Accepted, error) {
	if key == "" || len(key) > 255 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return Accepted{}, fmt.Errorf("client: Idempotency-Key %q: want 1-255 visible ASCII characters", key)
	}
	if len(rows) == 0 {
		return Accepted{}, errors.New("client: PostBatch: no rows")
	}
	b := &batch{uuid: uuid, key: key}
	for i, r := range rows {
		enc, err := encodeRow(r)
		if err != nil {
			return Accepted{}, fmt.Errorf("client: row %d: %w", i, err)
		}
		b.rows, b.encoded = append(b.rows, r), append(b.encoded, enc)
	}
	b.build()
	return p.send(ctx, b)
}

// newKey is a batch's Idempotency-Key: 128 random bits in hex.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send posts one batch until it is accepted, refused, given up or ctx
// ends.
func (p *Rows) send(ctx context.Context, b *batch) (Accepted, error) {
	bo := &backoff.ExponentialBackOff{InitialInterval: p.opts.RetryMin, MaxInterval: p.opts.RetryMax, Multiplier: 2, RandomizationFactor: 0.2}
	bo.Reset()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		acc, status, detail, retryAfter, err := p.post(ctx, b)
		if err == nil {
			if acc.Replayed {
				p.log.Info("batch stored by an earlier attempt; the gateway answered with its result", "uuid", b.uuid, "idempotencyKey", b.key, "delivery", acc.ID)
			}
			return acc, nil
		}
		if ctx.Err() != nil {
			return Accepted{}, ctx.Err()
		}
		fail := &BatchError{UUID: b.uuid, Key: b.key, Rows: b.rows, Status: status, Detail: detail, Attempts: attempt, Err: err}
		if !retryable(status) {
			return Accepted{}, fail
		}
		delay := bo.NextBackOff()
		if retryAfter > 0 {
			delay = retryAfter
		}
		if p.opts.GiveUpAfter > 0 && time.Since(start)+delay > p.opts.GiveUpAfter {
			fail.Err = fmt.Errorf("gave up after %s (GiveUpAfter): %w", time.Since(start).Round(time.Millisecond), err)
			return Accepted{}, fail
		}
		p.log.Warn("batch not accepted; retrying", "uuid", b.uuid, "rows", len(b.rows), "idempotencyKey", b.key,
			"attempt", attempt, "status", status, "error", err, "retryIn", delay.Round(time.Millisecond))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return Accepted{}, ctx.Err()
		}
	}
}

// retryable reports whether an answer's status (0: no answer) is worth
// another attempt under the same key.
func retryable(status int) bool {
	switch {
	case status == 0, status >= 500,
		status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// post sends one attempt of b. status is 0 when no answer came.
func (p *Rows) post(ctx context.Context, b *batch) (acc Accepted, status int, detail string, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(b.body))
	if err != nil {
		return acc, 0, "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", b.key)
	// The gateway continues the caller's trace (a trigger's, in a
	// Consume handler).
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if p.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return acc, 0, "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return acc, 0, "", 0, fmt.Errorf("read the answer: %w", err)
	}
	status = resp.StatusCode
	if status == http.StatusAccepted || status == http.StatusOK {
		if err := json.Unmarshal(body, &acc); err != nil {
			return acc, status, "", 0, fmt.Errorf("decode the answer: %w", err)
		}
		acc.Replayed = resp.Header.Get("Idempotent-Replayed") == "true"
		return acc, status, "", 0, nil
	}
	var problem struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &problem) == nil {
		detail = problem.Detail
	}
	return acc, status, detail, parseRetryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("%s", resp.Status)
}

// parseRetryAfter reads Retry-After: seconds, or an HTTP date; 0 when
// absent or unreadable.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
