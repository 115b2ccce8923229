package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

var must = testkit.Must

var quiet = hclog.New(&hclog.LoggerOptions{Output: io.Discard})

// forEachBackend runs f against SQLite and PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, cfg store.Config, s *store.Store)) {
	t.Helper()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			cfg := store.Config{DataDir: t.TempDir()}
			if backend == "postgres" {
				cfg.DatabaseURL = testkit.PostgresURL(t)
			}
			s := open(t, cfg)
			if s.Dialect() != backend {
				t.Fatalf("dialect %s, want %s", s.Dialect(), backend)
			}
			f(t, cfg, s)
		})
	}
}

func open(tb testing.TB, cfg store.Config) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), cfg, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func trig(uuid, key string) store.Trigger {
	return store.Trigger{
		UUID: uuid, IdempotencyKey: key, APIVersion: "OT-2/v1alpha1", Protocol: "PlateTransfer",
		Body: []byte(`{"uuid":"` + uuid + `","apiVersion":"OT-2/v1alpha1","protocol":"PlateTransfer","spec":{"volume":50}}`), Source: "http",
	}
}

func TestInsertAndGetTrigger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		in := trig("aaaa", "")
		got, created, err := s.InsertTrigger(ctx, in)
		if err != nil || !created {
			t.Fatalf("insert: created=%v err=%v", created, err)
		}
		read, err := s.GetTrigger(ctx, "aaaa")
		if err != nil {
			t.Fatal(err)
		}
		if string(read.Body) != string(in.Body) || read.Status != store.StatusPending || read.Source != "http" ||
			read.PublishedAt != nil || read.CreatedAt.Before(before) || !read.CreatedAt.Equal(got.CreatedAt) || read.Seq != got.Seq {
			t.Fatalf("round trip:\n got %+v\nwant %+v", read, got)
		}
		if _, err := s.GetTrigger(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown uuid: %v", err)
		}

		again, created, err := s.InsertTrigger(ctx, in)
		if err != nil || created || again.Seq != got.Seq {
			t.Fatalf("idempotent re-insert: created=%v err=%v", created, err)
		}
		changed := in
		changed.Body = []byte(`{"different":true}`)
		if _, _, err := s.InsertTrigger(ctx, changed); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("different body under the same uuid: %v", err)
		}
		if n, _ := s.PendingCount(ctx); n != 1 {
			t.Fatalf("outbox has %d entries, want 1", n)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		first, created, err := s.InsertTrigger(ctx, trig("u1", "riffyn:run1"))
		if err != nil || !created {
			t.Fatal(created, err)
		}
		dup, created, err := s.InsertTrigger(ctx, trig("u2", "riffyn:run1"))
		if err != nil || created || dup.UUID != "u1" || dup.Seq != first.Seq {
			t.Fatalf("same key: got %s created=%v err=%v, want the original u1", dup.UUID, created, err)
		}
		if _, err := s.GetTrigger(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a duplicate was stored")
		}
		if n, _ := s.PendingCount(ctx); n != 1 {
			t.Fatalf("outbox has %d entries, want 1", n)
		}
	})
}

func TestConcurrentInsertsOfOneKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		const n = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			uuids   = map[string]bool{}
			errs    []error
		)
		for i := range n {
			wg.Go(func() {
				got, c, err := s.InsertTrigger(ctx, trig(fmt.Sprintf("c%d", i), "same-key"))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				uuids[got.UUID] = true
				if c {
					created++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 || created != 1 || len(uuids) != 1 {
			t.Fatalf("created %d, distinct uuids %v, errors %v; want exactly one", created, uuids, errs)
		}
	})
}

func TestListTriggers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		for i := range 25 {
			tr := trig(fmt.Sprintf("t%02d", i), "")
			if i%5 == 0 {
				tr.APIVersion, tr.Protocol, tr.Source = "ChiBio/v1alpha1/ChiBio1", "Bioreactor", "watcher:riffyn"
			}
			if _, _, err := s.InsertTrigger(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			got, next, err := s.ListTriggers(ctx, store.TriggerFilter{Limit: 10, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range got {
				seen = append(seen, tr.UUID)
			}
			if next == "" {
				if page != 2 {
					t.Fatalf("%d pages, want 3", page+1)
				}
				break
			}
			cursor = next
		}
		if len(seen) != 25 || seen[0] != "t24" || seen[24] != "t00" {
			t.Fatalf("pages: %v", seen)
		}

		tests := []struct {
			name   string
			filter store.TriggerFilter
			want   int
		}{
			{"apiVersion", store.TriggerFilter{APIVersion: "ChiBio/v1alpha1/ChiBio1"}, 5},
			{"protocol", store.TriggerFilter{Protocol: "PlateTransfer"}, 20},
			{"source", store.TriggerFilter{Source: "watcher:riffyn"}, 5},
			{"status", store.TriggerFilter{Status: store.StatusPending}, 25},
			{"status none", store.TriggerFilter{Status: store.StatusPublished}, 0},
			{"since future", store.TriggerFilter{Since: time.Now().Add(time.Hour)}, 0},
			{"until future", store.TriggerFilter{Until: time.Now().Add(time.Hour)}, 25},
			{"until past", store.TriggerFilter{Until: time.Now().Add(-time.Hour)}, 0},
		}
		for _, tt := range tests {
			tt.filter.Limit = 100
			got, _, err := s.ListTriggers(ctx, tt.filter)
			if err != nil || len(got) != tt.want {
				t.Errorf("%s: %d triggers (%v), want %d", tt.name, len(got), err, tt.want)
			}
		}
		if _, _, err := s.ListTriggers(ctx, store.TriggerFilter{Cursor: "garbage"}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
	})
}

func TestOutbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		for _, u := range []string{"o1", "o2", "o3"} {
			if _, _, err := s.InsertTrigger(ctx, trig(u, "")); err != nil {
				t.Fatal(err)
			}
		}
		pending, err := s.ClaimOutbox(ctx, "a", 10, time.Minute)
		if err != nil || len(pending) != 3 || pending[0].Trigger.UUID != "o1" || pending[0].ReclaimedFrom != "" {
			t.Fatalf("claimed: %+v %v", pending, err)
		}
		if other, err := s.ClaimOutbox(ctx, "b", 10, time.Minute); err != nil || len(other) != 0 {
			t.Fatalf("entries claimed by a were claimed by b too: %+v %v", other, err)
		}
		if err := s.ReleaseOutbox(ctx, "a", []store.OutboxRelease{{ID: pending[2].ID, Failed: true, Delay: time.Hour, Error: "broker down"}}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		if err := s.Settle(ctx, "a", []int64{pending[0].ID}, []int64{pending[1].ID}, at); err != nil {
			t.Fatal(err)
		}
		// Settling again is harmless.
		if err := s.Settle(ctx, "a", []int64{pending[0].ID}, nil, at); err != nil {
			t.Fatal(err)
		}
		o1, _ := s.GetTrigger(ctx, "o1")
		o2, _ := s.GetTrigger(ctx, "o2")
		if o1.Status != store.StatusPublished || o1.PublishedAt == nil || !o1.PublishedAt.Equal(at) || o2.Status != store.StatusUnroutable {
			t.Fatalf("settled: o1 %s %v, o2 %s", o1.Status, o1.PublishedAt, o2.Status)
		}
		if due, _ := s.ClaimOutbox(ctx, "b", 10, time.Minute); len(due) != 0 {
			t.Fatalf("entry postponed by an hour is due: %+v", due)
		}
		if n, _ := s.PendingCount(ctx); n != 1 {
			t.Fatalf("pending count %d, want 1", n)
		}

		re, err := s.Requeue(ctx, "o1")
		if err != nil || re.Status != store.StatusPending || re.PublishedAt != nil {
			t.Fatalf("requeue: %+v %v", re, err)
		}
		due, _ := s.ClaimOutbox(ctx, "b", 10, time.Minute)
		if len(due) != 1 || due[0].Trigger.UUID != "o1" || due[0].Attempts != 0 {
			t.Fatalf("after requeue: %+v", due)
		}
		// Requeued while b publishes it: b's settle leaves it in the outbox.
		if _, err := s.Requeue(ctx, "o1"); err != nil {
			t.Fatal(err)
		}
		must(t, s.Settle(ctx, "b", []int64{due[0].ID}, nil, at))
		if _, err := s.Requeue(ctx, "o3"); err != nil {
			t.Fatal(err)
		}
		due, _ = s.ClaimOutbox(ctx, "b", 10, time.Minute)
		// o1 was settled and requeued: its new entry comes after o3's.
		if len(due) != 2 || due[0].Trigger.UUID != "o3" || due[0].Attempts != 1 || due[1].Trigger.UUID != "o1" {
			t.Fatalf("requeue of a postponed entry makes it due now, the requeued one stays: %+v", due)
		}
		if _, err := s.Requeue(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("requeue unknown: %v", err)
		}
	})
}

func TestPluginState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		st := s.PluginState("riffyn")
		other := s.PluginState("other")
		if _, err := st.Get(ctx, "x"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
		for _, k := range []string{"runs/b", "runs/a", "runs%/x", "runs_/y", "plates/p", "rüns/ü"} {
			if err := st.Put(ctx, k, []byte("v:"+k)); err != nil {
				t.Fatal(err)
			}
		}
		must(t, other.Put(ctx, "runs/a", []byte("other")))
		must(t, st.Put(ctx, "runs/a", []byte("replaced")))
		if v, err := st.Get(ctx, "runs/a"); err != nil || string(v) != "replaced" {
			t.Fatalf("get after replace: %q %v", v, err)
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"runs/", []string{"runs/a", "runs/b"}},
			{"runs%", []string{"runs%/x"}},
			{"runs_", []string{"runs_/y"}},
			{"rü", []string{"rüns/ü"}},
			{"", []string{"plates/p", "runs%/x", "runs/a", "runs/b", "runs_/y", "rüns/ü"}},
		}
		for _, tt := range tests {
			kvs, err := st.List(ctx, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, kv := range kvs {
				keys = append(keys, kv.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tt.want, ",") {
				t.Errorf("list %q = %v, want %v", tt.prefix, keys, tt.want)
			}
		}
		must(t, st.Delete(ctx, "runs/a"))
		must(t, st.Delete(ctx, "never"))
		if _, err := st.Get(ctx, "runs/a"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatal("deleted key still there")
		}
		if v, _ := other.Get(ctx, "runs/a"); string(v) != "other" {
			t.Fatal("plugins' state is not separate")
		}
		if err := st.Put(ctx, "big", make([]byte, store.MaxStateValueBytes+1)); !errors.Is(err, sdk.ErrTooLarge) {
			t.Fatalf("oversize value: %v", err)
		}
		if err := st.Put(ctx, strings.Repeat("k", store.MaxStateKeyBytes+1), nil); !errors.Is(err, sdk.ErrTooLarge) {
			t.Fatalf("oversize key: %v", err)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg store.Config, s *store.Store) {
		ctx := context.Background()
		if _, _, err := s.InsertTrigger(ctx, trig("keep", "k")); err != nil {
			t.Fatal(err)
		}
		must(t, s.StatePut(ctx, "p", "key", []byte("value")))
		must(t, s.Close())

		again := open(t, cfg) // migrations run again: a no-op
		if tr, err := again.GetTrigger(ctx, "keep"); err != nil || tr.IdempotencyKey != "k" {
			t.Fatalf("trigger lost across reopen: %+v %v", tr, err)
		}
		if v, err := again.StateGet(ctx, "p", "key"); err != nil || string(v) != "value" {
			t.Fatalf("state lost across reopen: %q %v", v, err)
		}
		if n, _ := again.PendingCount(ctx); n != 1 {
			t.Fatalf("outbox lost across reopen: %d", n)
		}
	})
}

// Concurrent writes share transactions (SQLite's group commit): a write
// that fails is rolled back alone and the others are committed.
func TestConcurrentWritesFailAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg store.Config, s *store.Store) {
		ctx := context.Background()
		must(t, func() error { _, _, err := s.InsertTrigger(ctx, trig("taken", "")); return err }())
		const good, bad = 100, 30
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			created   int
			conflicts int
			other     []error
		)
		for i := range good + bad {
			wg.Go(func() {
				tr := trig(fmt.Sprintf("g%d", i), "")
				if i >= good {
					tr = trig("taken", "")
					tr.Body = fmt.Appendf(nil, `{"different":%d}`, i)
				}
				_, c, err := s.InsertTrigger(ctx, tr)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, store.ErrConflict):
					conflicts++
				case err != nil:
					other = append(other, err)
				case c:
					created++
				}
			})
		}
		wg.Wait()
		if created != good || conflicts != bad || len(other) > 0 {
			t.Fatalf("created %d, conflicts %d, other errors %v; want %d, %d, none", created, conflicts, other, good, bad)
		}
		must(t, s.Close())
		s2 := open(t, cfg)
		n, err := s2.PendingCount(ctx)
		must(t, err)
		if n != good+1 {
			t.Fatalf("%d outbox entries after reopening, want %d", n, good+1)
		}
		got, err := s2.GetTrigger(ctx, "taken")
		must(t, err)
		if !strings.Contains(string(got.Body), `"uuid":"taken"`) {
			t.Fatalf("the conflicting writes changed the stored trigger: %s", got.Body)
		}
	})
}

// Concurrent inserts, which SQLite's committer inserts together, each get
// the answer they would get alone: a new trigger is created once with its
// outbox entry and the seq it is stored with, a repeat finds it, another
// body under its uuid is a conflict, a key stored already finds its
// trigger.
func TestConcurrentInsertsTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		const n = 300
		type answer struct {
			in, got store.Trigger
			created bool
			err     error
		}
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var in store.Trigger
				switch i % 5 {
				case 0, 1: // new
					in = trig(fmt.Sprintf("t%03d", i), "")
				case 2: // a repeat of a new one, perhaps in its batch
					in = trig(fmt.Sprintf("t%03d", i-2), "")
				case 3: // another body under a new one's uuid
					in = trig(fmt.Sprintf("t%03d", i-3), "")
					in.Body = []byte(`{"other":true}`)
				case 4: // a key: every tenth shares it with the one before
					in = trig(fmt.Sprintf("k%03d", i), fmt.Sprintf("key-%d", i/10))
				}
				got, created, err := s.InsertTrigger(ctx, in)
				answers[i] = answer{in, got, created, err}
			})
		}
		wg.Wait()
		created := map[string]int{}
		for i, a := range answers {
			// Of one uuid's bodies, the first stored wins.
			stored, err := s.GetTrigger(ctx, a.in.UUID)
			switch {
			case err != nil && a.in.IdempotencyKey == "":
				t.Errorf("%d: %s not stored: %v", i, a.in.UUID, err)
				continue
			case errors.Is(a.err, store.ErrConflict):
				if string(stored.Body) == string(a.in.Body) {
					t.Errorf("%d: conflict, but its body is stored", i)
				}
				continue
			case a.err != nil:
				t.Errorf("%d: %v", i, a.err)
				continue
			case a.in.IdempotencyKey == "" && string(a.got.Body) != string(a.in.Body):
				t.Errorf("%d: answered another body", i)
			}
			read, err := s.GetTrigger(ctx, a.got.UUID)
			if err != nil || read.Seq != a.got.Seq || string(read.Body) != string(a.got.Body) || !read.CreatedAt.Equal(a.got.CreatedAt) {
				t.Errorf("%d: answered %+v, stored %+v %v", i, a.got, read, err)
			}
			if a.created {
				created[a.got.UUID]++
			}
		}
		for u, c := range created {
			if c != 1 {
				t.Errorf("%s created %d times", u, c)
			}
		}
		// Two uuids of every 5 (one of them with two bodies), plus the
		// keyed: one per key.
		keys := map[string]bool{}
		for i := 4; i < n; i += 5 {
			keys[fmt.Sprintf("key-%d", i/10)] = true
		}
		want := 2*n/5 + len(keys)
		if len(created) != want {
			t.Errorf("%d triggers created, want %d", len(created), want)
		}
		if p, _ := s.PendingCount(ctx); p != want {
			t.Errorf("%d outbox entries, want %d", p, want)
		}
	})
}

// One service of a kind at a time uses a SQLite database, whose claims
// are held in its memory: a second control-tower on the same DATA_DIR
// fails and names the variable, and starts once the first is closed; a
// data-gateway may share the directory (its claims are of other tables).
func TestSQLiteDatabaseHasOneUserOfAKind(t *testing.T) {
	cfg := store.Config{DataDir: t.TempDir(), User: "control-tower"}
	first, err := store.Open(context.Background(), cfg, quiet)
	must(t, err)
	_, err = store.Open(context.Background(), cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "DATA_DIR=") || !strings.Contains(err.Error(), "another running control-tower") {
		t.Fatalf("second open: %v, want the DATA_DIR in use named", err)
	}
	open(t, store.Config{DataDir: cfg.DataDir, User: "data-gateway"})
	must(t, first.Close())
	open(t, cfg)
}
