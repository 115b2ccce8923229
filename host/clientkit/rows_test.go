package clientkit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk/client"
)

func rowsFor(from, to int) []client.Row {
	var out []client.Row
	for i := from; i < to; i++ {
		out = append(out, client.Row{Index: client.Well(i), Data: json.RawMessage(fmt.Sprintf(`{"odMeasured":%d.50,"well":"w%d"}`, i, i))})
	}
	return out
}

// checkOnce fails unless every row from 0 to n of uuid was delivered
// exactly once, values as sent.
func checkOnce(t *testing.T, rows []row, uuid string, n int) {
	t.Helper()
	counts := countRows(rows)
	for i := range n {
		if c := counts[fmt.Sprintf("%s/%d", uuid, i)]; c != 1 {
			t.Fatalf("row %d of %s delivered %d times", i, uuid, c)
		}
	}
	if len(rows) != n {
		t.Fatalf("%d rows delivered, want %d", len(rows), n)
	}
	for _, r := range rows {
		if want := fmt.Sprintf(`{"odMeasured":%d.50,"well":"w%d"}`, *r.Index, *r.Index); string(r.Data) != want {
			t.Fatalf("row %d: %s, want %s", *r.Index, r.Data, want)
		}
	}
}

// The row poster's batches get past a full backlog (429, Retry-After
// waited for) and a gateway killed and started again while rows are
// added: every row is delivered once.
func TestRowPosterSurvivesA429AndAGatewayRestart(t *testing.T) {
	g := newGateway(t, true, "PLUGIN_PROBE_DELAY=100ms", "MAX_BACKLOG=4", "PUSH_BATCH_ROWS=0")
	g.start()
	var lg logs
	p, err := client.NewRows(client.RowsOptions{
		URL: g.url(), BatchRows: 5, BatchDelay: 20 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 300 * time.Millisecond, Logger: lg.logger(t),
	})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer p.Close(ctx)

	must(t, p.Add(ctx, "r429", rowsFor(0, 40)...))
	must(t, p.Flush(ctx))
	if lg.count("status=429") == 0 {
		t.Fatal("no batch met a 429")
	}
	waitFor(t, 30*time.Second, "the backlog delivered", func() bool { return g.backlog() == 0 })

	g.kill()
	must(t, p.Add(ctx, "r429", rowsFor(40, 60)...))
	waitFor(t, 10*time.Second, "a batch to fail against the stopped gateway", func() bool {
		return lg.count("connection refused") > 0
	})
	g.start()
	must(t, p.Flush(ctx))
	must(t, p.Close(ctx))
	waitFor(t, 30*time.Second, "every row at the pusher", func() bool { return len(readRows(t, g.out)) >= 60 })
	time.Sleep(300 * time.Millisecond)
	checkOnce(t, readRows(t, g.out), "r429", 60)
}

// A batch whose 202 is lost (the connection cut between the gateway's
// answer and the client), the gateway then killed and started again, is
// sent again under its key and stored once: the answer is the original
// delivery, replayed. The same key with other rows is 422.
func TestBatchStoredOnceWhenItsAnswerIsLost(t *testing.T) {
	g := newGateway(t, false)
	g.start()
	front := newProxy(t, fmt.Sprintf("127.0.0.1:%d", g.port))
	var lg logs
	p, err := client.NewRows(client.RowsOptions{
		URL: "http://" + front.addr, RetryMin: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		RequestTimeout: 5 * time.Second, Logger: lg.logger(t),
	})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer p.Close(ctx)

	lost := front.DropNextAnswer()
	type result struct {
		acc []client.Accepted
		err error
	}
	posted := make(chan result, 1)
	go func() {
		acc, err := p.Post(ctx, "lost1", rowsFor(0, 10))
		posted <- result{acc, err}
	}()
	var answer []byte
	select {
	case answer = <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway never answered")
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	var first client.Accepted
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &first) != nil {
		t.Fatalf("the lost answer: %d %s", resp.StatusCode, body)
	}
	// Let the pusher deliver it, so the restart repeats no push.
	waitFor(t, 20*time.Second, "the lost batch delivered", func() bool {
		r, err := http.Get(fmt.Sprintf("%s/data/%d", g.url(), first.ID))
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var st struct{ Pushers []struct{ State string } }
		return json.NewDecoder(r.Body).Decode(&st) == nil && len(st.Pushers) == 1 && st.Pushers[0].State == "delivered"
	})
	g.kill()
	g.start()
	if lg.count("batch not accepted; retrying") == 0 {
		t.Fatal("the client did not retry while the answer was lost")
	}
	front.Resume()

	var res result
	select {
	case res = <-posted:
	case <-time.After(30 * time.Second):
		t.Fatal("Post never returned")
	}
	must(t, res.err)
	if len(res.acc) != 1 || !res.acc[0].Replayed || res.acc[0].ID != first.ID || res.acc[0].Rows != 10 {
		t.Fatalf("answer after the retry: %+v, lost answer %+v", res.acc, first)
	}
	if lg.count("batch stored by an earlier attempt") != 1 {
		t.Fatal("the replay was not logged")
	}
	time.Sleep(300 * time.Millisecond)
	checkOnce(t, readRows(t, g.out), "lost1", 10)

	// A key of the caller's: the same rows again are the same delivery;
	// other rows under it are refused, naming the key.
	acc, err := p.PostBatch(ctx, "relay-file-a.csv:0-9", "lost2", rowsFor(0, 10))
	must(t, err)
	again, err := p.PostBatch(ctx, "relay-file-a.csv:0-9", "lost2", rowsFor(0, 10))
	if err != nil || !again.Replayed || again.ID != acc.ID {
		t.Fatalf("same key and rows: %+v %v (first %+v)", again, err, acc)
	}
	_, err = p.PostBatch(ctx, "relay-file-a.csv:0-9", "lost2", rowsFor(10, 20))
	var be *client.BatchError
	if !errors.As(err, &be) || be.Status != http.StatusUnprocessableEntity || !strings.Contains(be.Detail, "relay-file-a.csv:0-9") || be.Attempts != 1 {
		t.Fatalf("other rows under the key: %v", err)
	}
}
