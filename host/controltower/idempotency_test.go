package controltower_test

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/routinglayer/routing/host/internal/testkit"
)

// postKeyed posts a trigger with an Idempotency-Key.
func postKeyed(tb testing.TB, url, key, body string) testkit.Reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	must(tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	return testkit.Send(tb, req)
}

// POST /triggers repeated under its Idempotency-Key gets the original 201
// with the same (generated) uuid and the trigger as it is now; another
// body under the key is 422 naming it; a malformed key 400.
func TestTriggerIdempotencyKey(t *testing.T) {
	cfg := testConfig(t, "amqp://guest:guest@"+brokerAddr()+"/")
	c := consume(t, cfg.AMQPExchange, "OT-2.v1alpha1.#")
	_, base := start(t, cfg)

	body := `{"apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":150}}`
	first := postKeyed(t, base+"/triggers", "lims-order-17", body)
	if first.Status != http.StatusCreated || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	var created stored
	first.JSON(t, &created)
	waitFor(t, 10*time.Second, "the trigger to be published", func() bool {
		var got stored
		call(t, http.MethodGet, base+"/triggers/"+created.UUID, nil).JSON(t, &got)
		return got.Status == "published"
	})
	again := postKeyed(t, base+"/triggers", "lims-order-17", body)
	var replayed stored
	again.JSON(t, &replayed)
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" ||
		again.Header.Get("Location") != first.Header.Get("Location") || replayed.UUID != created.UUID || replayed.Status != "published" {
		t.Fatalf("repeat: %d %s %v", again.Status, again.Body, again.Header)
	}
	other := postKeyed(t, base+"/triggers", "lims-order-17", `{"apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":151}}`)
	if detail, _ := other.Problem(t); other.Status != http.StatusUnprocessableEntity || !strings.Contains(detail, `"lims-order-17"`) {
		t.Fatalf("other body: %d %s", other.Status, other.Body)
	}
	if r := postKeyed(t, base+"/triggers", "bad key", body); r.Status != http.StatusBadRequest {
		t.Fatalf("bad key: %d %s", r.Status, r.Body)
	}
	// A trigger re-posted under its uuid with a new key: 200, replayed as 200.
	withUUID := `{"uuid":"` + created.UUID + `","apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":150}}`
	if r := postKeyed(t, base+"/triggers", "lims-order-18", withUUID); r.Status != http.StatusOK {
		t.Fatalf("known uuid, new key: %d %s", r.Status, r.Body)
	}
	if r := postKeyed(t, base+"/triggers", "lims-order-18", withUUID); r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("known uuid, repeated key: %d %s", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := c.ids()[created.UUID]; n != 1 {
		t.Fatalf("the trigger was published %d times", n)
	}
	if len(c.ids()) != 1 {
		t.Fatalf("published %v", c.ids())
	}
}

// Two requests with one key while the first is still being stored (the
// database's write lock held by another connection): one waits and gets
// 201, the other 409 at once; a repeat then gets the 201.
func TestTriggerIdempotencyKeyInFlight(t *testing.T) {
	cfg := testConfig(t, "amqp://guest:guest@"+brokerAddr()+"/")
	_, base := start(t, cfg)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "routing.db")+"?_pragma=busy_timeout(10000)")
	must(t, err)
	defer db.Close()
	conn, err := db.Conn(context.Background())
	must(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	must(t, err)
	locked := true
	unlock := func() {
		if locked {
			_, err := conn.ExecContext(context.Background(), "ROLLBACK")
			must(t, err)
			locked = false
		}
	}
	defer unlock()

	body := `{"apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":5}}`
	answers := make(chan testkit.Reply, 2)
	for range 2 {
		go func() { answers <- postKeyed(t, base+"/triggers", "held-key", body) }()
	}
	var conflict testkit.Reply
	select {
	case conflict = <-answers:
	case <-time.After(8 * time.Second):
		t.Fatal("neither request answered while the database was locked")
	}
	if detail, _ := conflict.Problem(t); conflict.Status != http.StatusConflict || conflict.Header.Get("Retry-After") == "" || !strings.Contains(detail, "still being handled") {
		t.Fatalf("the request in flight's twin: %d %s", conflict.Status, conflict.Body)
	}
	unlock()
	first := <-answers
	if first.Status != http.StatusCreated {
		t.Fatalf("the request in flight: %d %s", first.Status, first.Body)
	}
	var created, replayed stored
	first.JSON(t, &created)
	again := postKeyed(t, base+"/triggers", "held-key", body)
	again.JSON(t, &replayed)
	if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" || replayed.UUID != created.UUID {
		t.Fatalf("repeat: %d %s", again.Status, again.Body)
	}
}
