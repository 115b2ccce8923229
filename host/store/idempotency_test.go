package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// eachBackend runs f on a fresh SQLite and a fresh PostgreSQL store.
func eachBackend(t *testing.T, f func(t *testing.T, s *Store, cfg Config)) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir()}
			if dialect == "postgres" {
				cfg.DatabaseURL = testkit.PostgresURL(t)
			}
			s, err := Open(context.Background(), cfg, hclog.NewNullLogger())
			testkit.Must(t, err)
			t.Cleanup(func() { s.Close() })
			f(t, s, cfg)
		})
	}
}

func testKey(scope, key, body string, ttl time.Duration) *IdempotencyKey {
	h := sha256.Sum256([]byte(body))
	return &IdempotencyKey{Scope: scope, Key: key, Hash: h[:], TTL: ttl}
}

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	testkit.Must(t, s.r.QueryRow("SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// A keyed delivery stores its key in its transaction; the key used again
// writes nothing and names the original; another scope is another key.
func TestKeyedDeliveryIsStoredOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ Config) {
		ctx := context.Background()
		k := testKey("/data/batch", "batch-1", `{"uuid":"u"}`, time.Hour)
		d, err := s.InsertDeliveryWithKey(ctx, k, Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 2}, []string{"p", "q"})
		testkit.Must(t, err)
		rec, err := s.LookupKey(ctx, "/data/batch", "batch-1")
		testkit.Must(t, err)
		if rec.Status != http.StatusAccepted || rec.Ref != itoa(d.ID) || !rec.SameBody(k.Hash) || rec.ExpiresAt.Sub(rec.CreatedAt) != time.Hour {
			t.Fatalf("record %+v, delivery %d", rec, d.ID)
		}
		_, err = s.InsertDeliveryWithKey(ctx, testKey("/data/batch", "batch-1", `other`, time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 2}, []string{"p"})
		var used *KeyUsedError
		if !errors.As(err, &used) || used.Record.Ref != rec.Ref || used.Record.SameBody(testKey("", "", "other", 0).Hash) {
			t.Fatalf("second insert: %v", err)
		}
		if n := countRows(t, s, "deliveries"); n != 1 {
			t.Fatalf("%d deliveries after the key's reuse, want 1", n)
		}
		if n := countRows(t, s, "tasks"); n != 2 {
			t.Fatalf("%d tasks, want 2", n)
		}
		if _, err := s.InsertDeliveryWithKey(ctx, testKey("/data", "batch-1", `{"uuid":"u"}`, time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"}); err != nil {
			t.Fatalf("the key on another endpoint: %v", err)
		}
		if _, err := s.LookupKey(ctx, "/data/batch", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
	})
}

// A keyed trigger records 201 when new and 200 when its uuid held the same
// trigger already; the key used again writes nothing.
func TestKeyedTriggerRecordsItsStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ Config) {
		ctx := context.Background()
		trig := func(uuid string) Trigger {
			return Trigger{UUID: uuid, APIVersion: "OT-2/v1alpha1", Protocol: "P", Body: []byte(`{"uuid":"` + uuid + `"}`), Source: "http"}
		}
		_, created, err := s.InsertTriggerWithKey(ctx, testKey("/triggers", "k1", "a", time.Hour), trig("t1"))
		if err != nil || !created {
			t.Fatalf("first: %v %v", created, err)
		}
		_, created, err = s.InsertTriggerWithKey(ctx, testKey("/triggers", "k2", "a", time.Hour), trig("t1"))
		if err != nil || created {
			t.Fatalf("same trigger under another key: %v %v", created, err)
		}
		for key, status := range map[string]int{"k1": http.StatusCreated, "k2": http.StatusOK} {
			rec, err := s.LookupKey(ctx, "/triggers", key)
			if err != nil || rec.Status != status || rec.Ref != "t1" {
				t.Fatalf("%s: %+v %v", key, rec, err)
			}
		}
		_, _, err = s.InsertTriggerWithKey(ctx, testKey("/triggers", "k1", "a", time.Hour), trig("t2"))
		var used *KeyUsedError
		if !errors.As(err, &used) || used.Record.Ref != "t1" {
			t.Fatalf("reused key: %v", err)
		}
		if _, err := s.GetTrigger(ctx, "t2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("t2 stored under a used key: %v", err)
		}
		if n := countRows(t, s, "outbox"); n != 1 {
			t.Fatalf("%d outbox entries, want 1", n)
		}
	})
}

// An expired key is ignored, may be used again, and is purged.
func TestExpiredKeysAreReusedAndPurged(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ Config) {
		ctx := context.Background()
		_, err := s.InsertDeliveryWithKey(ctx, testKey("/data", "old", "a", time.Millisecond), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
		testkit.Must(t, err)
		_, err = s.InsertDeliveryWithKey(ctx, testKey("/data", "gone", "a", time.Millisecond), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
		testkit.Must(t, err)
		_, err = s.InsertDeliveryWithKey(ctx, testKey("/data", "kept", "a", time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
		testkit.Must(t, err)
		time.Sleep(5 * time.Millisecond)
		if _, err := s.LookupKey(ctx, "/data", "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired key found: %v", err)
		}
		d, err := s.InsertDeliveryWithKey(ctx, testKey("/data", "old", "b", time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
		if err != nil {
			t.Fatalf("reusing an expired key: %v", err)
		}
		if rec, err := s.LookupKey(ctx, "/data", "old"); err != nil || rec.Ref != itoa(d.ID) {
			t.Fatalf("reused key: %+v %v", rec, err)
		}
		n, err := s.PurgeKeys(ctx, time.Now())
		if err != nil || n != 1 {
			t.Fatalf("purged %d (%v), want 1", n, err)
		}
		if got := countRows(t, s, "idempotency_keys"); got != 2 {
			t.Fatalf("%d keys left, want 2", got)
		}
		// Past everyone's expiry, in batches.
		testkit.Must(t, s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			for i := range 2*purgeBatch + 5 {
				if err := s.recordKey(ctx, tx, testKey("/data", "bulk-"+itoa(int64(i)), "a", time.Millisecond), 202, "1"); err != nil {
					return err
				}
			}
			return nil
		}))
		n, err = s.PurgeKeys(ctx, time.Now().Add(2*time.Hour))
		if err != nil || n != 2*purgeBatch+5+2 {
			t.Fatalf("purged %d (%v), want %d", n, err, 2*purgeBatch+5+2)
		}
	})
}

// Concurrent writes under one key store one delivery: the others find the
// key used (SQLite's writes are serial; PostgreSQL's wait for or fail on
// the key's lock).
func TestConcurrentKeyedWritesStoreOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ Config) {
		ctx := context.Background()
		var (
			wg                   sync.WaitGroup
			mu                   sync.Mutex
			stored, used, flight int
		)
		for range 20 {
			wg.Go(func() {
				_, err := s.InsertDeliveryWithKey(ctx, testKey("/data", "same", "a", time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
				var u *KeyUsedError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					stored++
				case errors.As(err, &u):
					used++
				case errors.Is(err, ErrKeyInFlight):
					flight++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if stored != 1 || used+flight != 19 {
			t.Fatalf("stored %d, used %d, in flight %d", stored, used, flight)
		}
		if n := countRows(t, s, "deliveries"); n != 1 {
			t.Fatalf("%d deliveries, want 1", n)
		}
	})
}

// On PostgreSQL a key held by another transaction (another instance's
// request in flight) is ErrKeyInFlight at once, and free again after it.
func TestKeyHeldByAnotherTransactionIsInFlight(t *testing.T) {
	url := testkit.PostgresURL(t)
	s, err := Open(context.Background(), Config{DatabaseURL: url}, hclog.NewNullLogger())
	testkit.Must(t, err)
	defer s.Close()
	other, err := sql.Open("pgx", url)
	testkit.Must(t, err)
	defer other.Close()
	tx, err := other.Begin()
	testkit.Must(t, err)
	h := fnv.New32a()
	h.Write([]byte("/data\x00held"))
	_, err = tx.Exec("SELECT pg_advisory_xact_lock($1, $2)", keyLockClass, int32(h.Sum32()))
	testkit.Must(t, err)

	ctx := context.Background()
	start := time.Now()
	_, err = s.InsertDeliveryWithKey(ctx, testKey("/data", "held", "a", time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"})
	if !errors.Is(err, ErrKeyInFlight) {
		t.Fatalf("held key: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %s for a held key", d)
	}
	if n := countRows(t, s, "deliveries"); n != 0 {
		t.Fatalf("%d deliveries stored under a held key", n)
	}
	testkit.Must(t, tx.Rollback())
	if _, err := s.InsertDeliveryWithKey(ctx, testKey("/data", "held", "a", time.Hour), Delivery{UUID: "u", Rows: []byte(`[]`), RowCount: 1}, []string{"p"}); err != nil {
		t.Fatalf("released key: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
