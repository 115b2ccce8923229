package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/metrics"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

func TestSplitRowsCutsAtRowBoundariesInOrder(t *testing.T) {
	var rows []sdk.Row
	for i := range 7 {
		rows = append(rows, sdk.Row{Data: sdk.Data{{Key: "v", Value: fmt.Appendf(nil, `"%s"`, strings.Repeat("x", 90+i))}}})
	}
	encoded, err := pluginhost.EncodeRows(rows)
	testkit.Must(t, err)
	sizes, err := encoded.RowSizes()
	testkit.Must(t, err)
	for _, room := range []int{len(encoded), sizes[6], 2*sizes[6] + 1, 3 * sizes[6], len(encoded) - 1} {
		parts, err := splitRows(encoded, room)
		testkit.Must(t, err)
		var joined pluginhost.EncodedRows
		for i, p := range parts {
			n, err := p.Len()
			testkit.Must(t, err)
			done, _ := joined.Len()
			if len(p) > room {
				t.Fatalf("room %d: part %d has %d bytes", room, i, len(p))
			}
			if i+1 < len(parts) && len(p)+sizes[done+n] <= room {
				t.Fatalf("room %d: part %d (%d bytes) could have taken the next row", room, i, len(p))
			}
			joined = append(joined, p...)
		}
		if string(joined) != string(encoded) {
			t.Fatalf("room %d: the parts do not add up to the rows in order", room)
		}
	}
	if _, err := splitRows(encoded, sizes[6]-1); err == nil || !strings.Contains(err.Error(), "row 6") {
		t.Fatalf("a row larger than the room: %v", err)
	}
}

// recorder is a pusher that keeps what it is pushed.
type recorder struct {
	limit int
	mu    sync.Mutex
	sizes []int
	rows  [][]sdk.Row
}

func (r *recorder) Info(context.Context) (pluginhost.Manifest, error) {
	return pluginhost.Manifest{}, nil
}
func (r *recorder) Start(context.Context, sdk.State) error { return nil }
func (r *recorder) pushes() ([]int, [][]sdk.Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sizes, r.rows
}

func (r *recorder) Push(_ context.Context, req sdk.PushRequest, rows pluginhost.EncodedRows) error {
	size := pluginhost.PushRequestSize(req, rows)
	if size > r.limit {
		// What gRPC would do with a message over its limit.
		return fmt.Errorf("message of %d bytes over the limit of %d", size, r.limit)
	}
	if req.Trigger == nil || len(req.Trigger.Spec) < 20000 {
		return sdk.Permanent(fmt.Errorf("pushed without its trigger"))
	}
	decoded, err := rows.Decode()
	if err != nil {
		return sdk.Permanent(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes, r.rows = append(r.sizes, size), append(r.rows, decoded)
	return nil
}

// With a trigger of 20 kB and a message limit of 64 KiB, no Push passes the
// limit: queued requests are coalesced only as far as they fit beside the
// trigger, a request of 100 kB goes in consecutive parts, and a row that
// cannot fit at all is dead-lettered. Every row arrives once, in order.
func TestPushesStayWithinTheMessageLimit(t *testing.T) {
	const limit = 64 << 10
	tower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uuid := strings.TrimPrefix(r.URL.Path, "/triggers/")
		_ = json.NewEncoder(w).Encode(sdk.StoredTrigger{
			Trigger:   sdk.Trigger{UUID: uuid, APIVersion: "OT-2/v1", Protocol: "Grow", Spec: fmt.Appendf(nil, `{"blob":"%s"}`, strings.Repeat("s", 20000))},
			CreatedAt: time.Now(), Source: "http", Status: "published",
		})
	}))
	defer tower.Close()
	st, err := store.Open(t.Context(), store.Config{DataDir: t.TempDir()}, hclog.NewNullLogger())
	testkit.Must(t, err)
	defer st.Close()
	sp := New(Config{
		MaxRows: 10000, MaxBacklog: 1000, MaxSpoolBytes: 1 << 30, Concurrency: 2, PushTimeout: 10 * time.Second,
		MaxAttempts: 3, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxBatchRows: 1000,
		ControlTowerURL: tower.URL, Metrics: metrics.NewGateway(prometheus.NewRegistry()), Instance: "test", MaxPushBytes: limit,
	}, st, func() []Pusher { return nil }, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	testkit.Must(t, sp.LoadSpool(t.Context()))

	// One request of 10 rows, one of 100, then ten of 10: about 1 kB a row.
	var (
		want  []string
		reqOf []int // request of each row
		reqs  int
	)
	insert := func(uuid string, n, pad int) {
		reqs++
		var rows []sdk.Row
		for range n {
			data := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, len(want), strings.Repeat("p", pad))
			var row sdk.Row
			testkit.Must(t, json.Unmarshal([]byte(`{"data":`+data+`}`), &row))
			rows, want, reqOf = append(rows, row), append(want, data), append(reqOf, reqs)
		}
		encoded, err := pluginhost.EncodeRows(rows)
		testkit.Must(t, err)
		_, err = st.InsertDelivery(t.Context(), uuid, encoded, n, []string{"p"})
		testkit.Must(t, err)
	}
	insert("big", 10, 1000)
	insert("big", 100, 1000)
	for range 10 {
		insert("big", 10, 1000)
	}
	rowCount := len(want)
	insert("huge", 1, 50000) // fits a message, not beside the trigger

	rec := &recorder{limit: limit}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sp.deliver(ctx, "p", rec) }()
	testkit.WaitFor(t, 30*time.Second, "every task finished", func() bool {
		u, err := st.Usage(t.Context())
		return err == nil && u.Pending["p"] == 0
	})
	cancel()
	testkit.Must(t, <-done)

	sizes, pushes := rec.pushes()
	var got []string
	coalesced, largest, partsOfSecond := false, 0, 0
	for i, rows := range pushes {
		largest = max(largest, sizes[i])
		requests := map[int]bool{}
		for j, r := range rows {
			b, err := r.Data.MarshalJSON()
			testkit.Must(t, err)
			if k := len(got); k < rowCount && j < len(rows) {
				requests[reqOf[k]] = true
			}
			got = append(got, string(b))
		}
		coalesced = coalesced || len(requests) > 1
		if requests[2] {
			partsOfSecond++
		}
	}
	if strings.Join(got, "\n") != strings.Join(want[:rowCount], "\n") {
		t.Fatalf("%d rows pushed, want the %d rows once each, in order", len(got), rowCount)
	}
	if partsOfSecond < 3 || !coalesced {
		t.Fatalf("pushes of %v bytes: the 100-row request went in %d pushes (want 3 or more), coalesced: %v", sizes, partsOfSecond, coalesced)
	}
	t.Logf("%d pushes, at most %d bytes each (limit %d): %v", len(pushes), largest, limit, sizes)
	dead, err := st.ListDeadLetters(t.Context(), store.DeadLetterFilter{UUID: "huge"})
	testkit.Must(t, err)
	if len(dead) != 1 || !strings.Contains(dead[0].LastError, "row 0 of the request is") {
		t.Fatalf("dead letters of the oversize row: %+v", dead)
	}
	if b := sp.SpoolBytes(); b != 0 {
		t.Fatalf("spool bytes %d once every task finished, want 0", b)
	}
}
