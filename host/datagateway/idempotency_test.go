package datagateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/spool"
)

// postKeyed sends body to url as JSON with an Idempotency-Key (none when key
// is "") and, when gz, gzip-compressed.
func postKeyed(tb testing.TB, url, key, body string, gz bool) response {
	tb.Helper()
	data := []byte(body)
	if gz {
		data = testkit.Gzip(tb, data)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	must(tb, err)
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return testkit.Send(tb, req)
}

func startWithJSONL(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	rowsDir := t.TempDir()
	e := newEnv(t, append([]string{"PLUGIN_JSONL_DIR=" + rowsDir}, extra...)...)
	install(t, "pusher-jsonl", e.plugins, "pusher-jsonl")
	svc, base := start(t, e.config(t))
	waitFor(t, 60*time.Second, "the pusher to run", func() bool {
		st, err := svc.Plugins().Get("jsonl")
		return err == nil && st.State == pluginmgr.StateRunning
	})
	return base, rowsDir
}

// A request repeated under its Idempotency-Key gets the original 202
// (the same delivery, marked replayed) and stores nothing again, also
// gzip-compressed; another body under the key is 422 naming it; the key
// on the other endpoint, or no key, stores anew.
func TestIdempotencyKeyRepeatsTheOriginalAnswer(t *testing.T) {
	base, rowsDir := startWithJSONL(t)
	batch := `{"uuid":"idem1","rows":[{"index":0,"data":{"od":0.1}},{"index":1,"data":{"od":0.2}}]}`
	first := postKeyed(t, base+"/data/batch", "relay-batch-0001", batch, false)
	if first.Status != http.StatusAccepted || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	var acc spool.Accepted
	first.JSON(t, &acc)
	for _, gz := range []bool{false, true} {
		again := postKeyed(t, base+"/data/batch", "relay-batch-0001", batch, gz)
		var re spool.Accepted
		again.JSON(t, &re)
		if again.Status != http.StatusAccepted || again.Header.Get("Idempotent-Replayed") != "true" ||
			again.Header.Get("Location") != first.Header.Get("Location") || re.ID != acc.ID || re.Rows != 2 || strings.Join(re.Pushers, ",") != "jsonl" {
			t.Fatalf("repeat (gzip %v): %d %s %v", gz, again.Status, again.Body, again.Header)
		}
	}
	// The draft's quoted form names the same key.
	if r := postKeyed(t, base+"/data/batch", `"relay-batch-0001"`, batch, false); r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("quoted key: %d %s", r.Status, r.Body)
	}
	other := postKeyed(t, base+"/data/batch", "relay-batch-0001", `{"uuid":"idem1","rows":[{"index":2,"data":{"od":0.3}}]}`, false)
	if other.Status != http.StatusUnprocessableEntity {
		t.Fatalf("other body: %d %s", other.Status, other.Body)
	}
	if detail, _ := other.Problem(t); !strings.Contains(detail, `"relay-batch-0001"`) || !strings.Contains(detail, "different body") {
		t.Fatalf("422 detail: %s", detail)
	}
	one := `{"uuid":"idem1","row":{"index":3,"data":{"od":0.4}}}`
	if r := postKeyed(t, base+"/data", "relay-batch-0001", one, false); r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the key on /data: %d %s", r.Status, r.Body)
	}
	for _, bad := range []string{"two words", strings.Repeat("k", 256), "café"} {
		r := postKeyed(t, base+"/data", bad, one, false)
		if detail, _ := r.Problem(t); r.Status != http.StatusBadRequest || !strings.Contains(detail, "Idempotency-Key") {
			t.Fatalf("key %q: %d %s", bad, r.Status, r.Body)
		}
	}
	// Without a key a repeat is a new request.
	if r := postKeyed(t, base+"/data", "", one, false); r.Status != http.StatusAccepted {
		t.Fatalf("no key: %d %s", r.Status, r.Body)
	}

	want := `{"uuid":"idem1","index":0,"data":{"od":0.1}}` + "\n" + `{"uuid":"idem1","index":1,"data":{"od":0.2}}` + "\n" +
		`{"uuid":"idem1","index":3,"data":{"od":0.4}}` + "\n" + `{"uuid":"idem1","index":3,"data":{"od":0.4}}` + "\n"
	var got []byte
	waitFor(t, 10*time.Second, "the rows in the pusher's file", func() bool {
		got, _ = os.ReadFile(filepath.Join(rowsDir, "idem1.jsonl"))
		return len(got) >= len(want)
	})
	time.Sleep(200 * time.Millisecond)
	if got, _ = os.ReadFile(filepath.Join(rowsDir, "idem1.jsonl")); string(got) != want {
		t.Fatalf("file:\n got %s\nwant %s", got, want)
	}
}

// A request arriving while the first with its key is still being handled
// (here: waiting for the control-tower to verify its uuid) is 409 with
// Retry-After; once the first is answered, a repeat gets its answer.
func TestIdempotencyKeyInFlightIsConflict(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	tower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"uuid": "slow1", "apiVersion": "OT-2/v1alpha1", "protocol": "P", "spec": map[string]any{"a": 1},
			"createdAt": time.Now(), "source": "http", "status": "published"})
	}))
	defer tower.Close()
	defer once.Do(func() { close(release) })
	base, _ := startWithJSONL(t, "CONTROL_TOWER_URL="+tower.URL, "VERIFY_TRIGGERS=true")

	body := `{"uuid":"slow1","row":{"data":{"od":1}}}`
	firstDone := make(chan response, 1)
	go func() { firstDone <- postKeyed(t, base+"/data", "k-in-flight", body, false) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never asked the control-tower")
	}
	r := postKeyed(t, base+"/data", "k-in-flight", body, false)
	if detail, _ := r.Problem(t); r.Status != http.StatusConflict || r.Header.Get("Retry-After") == "" || !strings.Contains(detail, `"k-in-flight"`) {
		t.Fatalf("409: %v %s", r.Header, r.Body)
	}
	once.Do(func() { close(release) })
	first := <-firstDone
	if first.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := postKeyed(t, base+"/data", "k-in-flight", body, false)
	if again.Status != http.StatusAccepted || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("after the first: %d %s, first %s", again.Status, again.Body, first.Body)
	}
}

// Past IDEMPOTENCY_TTL a key names a new request.
func TestIdempotencyKeyExpires(t *testing.T) {
	base, _ := startWithJSONL(t, "IDEMPOTENCY_TTL=1s")
	if r := postKeyed(t, base+"/data", "short-lived", `{"uuid":"ttl1","row":{"data":{"a":1}}}`, false); r.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", r.Status, r.Body)
	}
	if r := postKeyed(t, base+"/data", "short-lived", `{"uuid":"ttl1","row":{"data":{"a":2}}}`, false); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("within the TTL: %d %s", r.Status, r.Body)
	}
	time.Sleep(1100 * time.Millisecond)
	r := postKeyed(t, base+"/data", "short-lived", `{"uuid":"ttl1","row":{"data":{"a":2}}}`, false)
	if r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("past the TTL: %d %s", r.Status, r.Body)
	}
}

// Gateways sharing PostgreSQL share the keys: a repeat sent to another
// instance gets the first one's answer.
func TestIdempotencyKeyAcrossInstances(t *testing.T) {
	db := postgresURL(t)
	a, _ := startWithJSONL(t, "DATABASE_URL="+db, "INSTANCE_ID=a")
	b, _ := startWithJSONL(t, "DATABASE_URL="+db, "INSTANCE_ID=b")
	body := `{"uuid":"pg1","rows":[{"data":{"a":1}}]}`
	first := postKeyed(t, a+"/data/batch", "shared-key", body, false)
	if first.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := postKeyed(t, b+"/data/batch", "shared-key", body, false)
	if again.Status != http.StatusAccepted || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("on the other instance: %d %s, first %s", again.Status, again.Body, first.Body)
	}
	if r := postKeyed(t, b+"/data/batch", "shared-key", `{"uuid":"pg1","rows":[{"data":{"a":2}}]}`, false); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("other body on the other instance: %d %s", r.Status, r.Body)
	}
}
