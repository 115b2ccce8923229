package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gateway is a fake data-gateway: it records each attempt and answers
// with the next scripted status (202 once the script is used up), storing
// a batch once per key as the real one does.
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	attempts []attempt
	stored   map[string][]json.RawMessage // key -> rows
	order    []string                     // keys in storing order
}

type attempt struct {
	key, auth string
	at        time.Time
	uuid      string
	rows      int
}

func newGateway(t *testing.T, script ...int) *gateway {
	g := &gateway{script: script, stored: map[string][]json.RawMessage{}}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/data/batch" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var body struct {
			UUID string            `json:"uuid"`
			Rows []json.RawMessage `json:"rows"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		g.mu.Lock()
		defer g.mu.Unlock()
		g.attempts = append(g.attempts, attempt{key: key, auth: r.Header.Get("Authorization"), at: time.Now(), uuid: body.UUID, rows: len(body.Rows)})
		status := http.StatusAccepted
		if len(g.script) > 0 {
			status, g.script = g.script[0], g.script[1:]
		}
		switch status {
		case -1: // store, then drop the connection before answering
			g.store(key, body.Rows)
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "1")
		}
		if status != http.StatusAccepted {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"status":%d,"detail":"scripted %d"}`, status, status)
			return
		}
		replayed := g.stored[key] != nil
		g.store(key, body.Rows)
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%d,"uuid":%q,"rows":%d,"pushers":["jsonl"]}`, len(g.order), body.UUID, len(body.Rows))
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) store(key string, rows []json.RawMessage) {
	if g.stored[key] == nil {
		g.stored[key] = rows
		g.order = append(g.order, key)
	}
}

func (g *gateway) snapshot() ([]attempt, [][]json.RawMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var batches [][]json.RawMessage
	for _, k := range g.order {
		batches = append(batches, g.stored[k])
	}
	return append([]attempt(nil), g.attempts...), batches
}

func newPoster(t *testing.T, opts RowsOptions) *Rows {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}
	p, err := NewRows(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func row(i int) Row { return Row{Index: Well(i), Data: map[string]any{"n": i}} }

// Rows go out in batches of BatchRows, in order, the last one flushed;
// the token is sent.
func TestRowsBatchBySize(t *testing.T) {
	g := newGateway(t)
	p := newPoster(t, RowsOptions{URL: g.URL, Token: "secret-token-0123456789", BatchRows: 4, BatchDelay: time.Hour})
	ctx := context.Background()
	for i := range 10 {
		if err := p.Add(ctx, "u1", row(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	attempts, batches := g.snapshot()
	if len(batches) != 3 || len(batches[0]) != 4 || len(batches[1]) != 4 || len(batches[2]) != 2 {
		t.Fatalf("batches %v", batches)
	}
	n := 0
	for _, b := range batches {
		for _, r := range b {
			if want := fmt.Sprintf(`{"index":%d,"data":{"n":%d}}`, n, n); string(r) != want {
				t.Fatalf("row %d: %s, want %s", n, r, want)
			}
			n++
		}
	}
	for _, a := range attempts {
		if a.auth != "Bearer secret-token-0123456789" || len(a.key) != 32 {
			t.Fatalf("attempt %+v", a)
		}
	}
}

// A batch that does not fill is sent BatchDelay after its first row.
func TestRowsBatchByTime(t *testing.T) {
	g := newGateway(t)
	p := newPoster(t, RowsOptions{URL: g.URL, BatchRows: 100, BatchDelay: 200 * time.Millisecond})
	start := time.Now()
	if err := p.Add(context.Background(), "u1", row(0), row(1)); err != nil {
		t.Fatal(err)
	}
	for {
		if attempts, _ := g.snapshot(); len(attempts) > 0 {
			if d := attempts[0].at.Sub(start); d < 150*time.Millisecond || d > 2*time.Second {
				t.Fatalf("sent after %s, want about 200ms", d)
			}
			if attempts[0].rows != 2 {
				t.Fatalf("%d rows", attempts[0].rows)
			}
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("batch never sent")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// 503, 429 (with Retry-After, waited for), a dropped connection after the
// gateway stored the batch: retried under one key, stored once.
func TestRowsRetryUnderOneKey(t *testing.T) {
	g := newGateway(t, http.StatusServiceUnavailable, http.StatusTooManyRequests, -1)
	p := newPoster(t, RowsOptions{URL: g.URL})
	acc, err := p.Post(context.Background(), "u1", []Row{row(0), row(1), row(2)})
	if err != nil {
		t.Fatal(err)
	}
	attempts, batches := g.snapshot()
	if len(attempts) != 4 || len(batches) != 1 || len(batches[0]) != 3 {
		t.Fatalf("%d attempts, batches %v", len(attempts), batches)
	}
	for _, a := range attempts[1:] {
		if a.key != attempts[0].key {
			t.Fatalf("keys %q and %q", attempts[0].key, a.key)
		}
	}
	if gap := attempts[2].at.Sub(attempts[1].at); gap < 900*time.Millisecond {
		t.Fatalf("Retry-After: 1 not waited for: %s", gap)
	}
	if len(acc) != 1 || !acc[0].Replayed || acc[0].Rows != 3 {
		t.Fatalf("accepted %+v", acc)
	}
}

// A refusal stops the poster: Add, Flush and Close return it, Unsent has
// the rows; nothing is dropped silently.
func TestRowsRefusalIsSticky(t *testing.T) {
	g := newGateway(t, http.StatusUnprocessableEntity)
	p := newPoster(t, RowsOptions{URL: g.URL, BatchRows: 2, BatchDelay: time.Hour})
	ctx := context.Background()
	if err := p.Add(ctx, "u1", row(0), row(1), row(2)); err != nil {
		t.Fatal(err)
	}
	err := p.Flush(ctx)
	var be *BatchError
	if !errors.As(err, &be) || be.Status != http.StatusUnprocessableEntity || be.Detail != "scripted 422" || len(be.Rows) != 2 || be.Attempts != 1 {
		t.Fatalf("flush: %v", err)
	}
	if err := p.Add(ctx, "u1", row(3)); !errors.As(err, &be) {
		t.Fatalf("add after a refusal: %v", err)
	}
	unsent := p.Unsent()["u1"]
	if len(unsent) != 3 || *unsent[0].Index != 0 || *unsent[2].Index != 2 {
		t.Fatalf("unsent %+v", unsent)
	}
	if err := p.Close(ctx); !errors.As(err, &be) {
		t.Fatalf("close: %v", err)
	}
}

// GiveUpAfter ends the retries with a BatchError.
func TestRowsGiveUp(t *testing.T) {
	g := newGateway(t, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500)
	p := newPoster(t, RowsOptions{URL: g.URL, GiveUpAfter: 100 * time.Millisecond})
	_, err := p.Post(context.Background(), "u1", []Row{row(0)})
	var be *BatchError
	if !errors.As(err, &be) || be.Status != 500 || be.Attempts < 2 {
		t.Fatalf("%v", err)
	}
}

// Close whose context ends before the gateway answers reports the rows
// not delivered.
func TestRowsCloseDeadline(t *testing.T) {
	g := newGateway(t, 503, 503, 503, 503, 503, 503, 503, 503)
	p := newPoster(t, RowsOptions{URL: g.URL})
	if err := p.Add(context.Background(), "u1", row(0), row(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || len(p.Unsent()["u1"]) != 2 {
		t.Fatalf("close: %v, unsent %v", err, p.Unsent())
	}
	if err := p.Add(context.Background(), "u1", row(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

// Add refuses data that is not an object, and blocks on a full queue
// until the sender makes room.
func TestRowsAddChecksAndBackpressure(t *testing.T) {
	g := newGateway(t)
	p := newPoster(t, RowsOptions{URL: g.URL, BatchRows: 2, QueueRows: 2, BatchDelay: time.Hour})
	ctx := context.Background()
	for _, bad := range []Row{
		{Data: []int{1}}, {Data: map[string]any{}}, {Data: map[string]any{"Key_One": 1}},
		{Data: map[string]any{"nested": map[string]int{"a": 1}}}, {Index: Well(-1), Data: map[string]any{"a": 1}},
		{Data: json.RawMessage(`{"a":[1]}`)},
	} {
		if err := p.Add(ctx, "u1", bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if err := p.Add(ctx, "", row(0)); err == nil {
		t.Fatal("empty uuid accepted")
	}
	for i := range 20 {
		if err := p.Add(ctx, "u1", row(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, batches := g.snapshot(); len(batches) != 10 {
		t.Fatalf("%d batches", len(batches))
	}
	if _, err := NewRows(RowsOptions{URL: "ftp://x"}); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	if d := parseRetryAfter("5"); d != 5*time.Second {
		t.Fatal(d)
	}
	if d := parseRetryAfter(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)); d < time.Second || d > 3*time.Second {
		t.Fatal(d)
	}
	if parseRetryAfter("") != 0 || parseRetryAfter("soon") != 0 {
		t.Fatal("unreadable Retry-After")
	}
}

// An https gateway is trusted through CAFile; without it the poster
// retries (the certificate is unknown) until it gives up.
func TestRowsHTTPSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tls-token-0123456789" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"id":7,"uuid":"u1","rows":1,"pushers":["jsonl"]}`)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPoster(t, RowsOptions{URL: srv.URL, CAFile: ca, Token: "tls-token-0123456789"})
	acc, err := p.Post(context.Background(), "u1", []Row{row(0)})
	if err != nil || len(acc) != 1 || acc[0].ID != 7 {
		t.Fatalf("%+v %v", acc, err)
	}
	untrusted := newPoster(t, RowsOptions{URL: srv.URL, GiveUpAfter: 100 * time.Millisecond})
	_, err = untrusted.Post(context.Background(), "u1", []Row{row(0)})
	var be *BatchError
	if !errors.As(err, &be) || be.Status != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted: %v", err)
	}
	if _, err := NewRows(RowsOptions{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Fatal("a missing CA file accepted")
	}
}
