package store

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Writes queued together share a transaction; one that fails or panics
// is rolled back alone and the committer goes on.
func TestGroupCommitIsolatesFailingWrites(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir()}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs = map[int]error{}
	)
	for i := range 60 {
		wg.Go(func() {
			err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES ('p', ?, x'00', 0)", fmt.Sprint(i)); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return fmt.Errorf("write %d fails", i)
				case 7:
					panic(fmt.Sprintf("write %d panics", i))
				}
				return nil
			})
			mu.Lock()
			errs[i] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch i % 10 {
		case 3:
			if err == nil || !strings.Contains(err.Error(), "fails") {
				t.Errorf("write %d: %v, want its own error", i, err)
			}
		case 7:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("write %d: %v, want the panic as an error", i, err)
			}
		default:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
	}
	kvs, err := s.StateList(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 48 {
		t.Fatalf("%d writes committed, want the 48 that succeeded", len(kvs))
	}
	for _, kv := range kvs {
		var n int
		fmt.Sscan(kv.Key, &n)
		if n%10 == 3 || n%10 == 7 {
			t.Fatalf("the effect of failed write %d was committed", n)
		}
	}
	if tx, w := s.group.transactions.Load(), s.group.writes.Load(); tx >= w {
		t.Errorf("%d writes in %d transactions: nothing was grouped", w, tx)
	}
	// The committer still works.
	if err := s.StatePut(ctx, "p", "after", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// A caller whose context ends while its write runs inside a shared
// transaction does not take the others' writes down: SQLite's driver
// interrupts a statement whose context ends, and an interrupted INSERT
// rolls back the whole transaction ("no such savepoint" for the rest).
func TestGroupCommitSurvivesACancelledWrite(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir()}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bg := context.Background()

	// Hold the committer in one write while the next batch queues up.
	release := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.inTx(bg, func(context.Context, *sql.Tx) error { <-release; return nil })
	}()
	waitQueued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); len(s.group.ops) < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", len(s.group.ops), n)
			}
			runtime.Gosched()
		}
	}
	insert := func(ctx context.Context, key string) error {
		return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES ('p', ?, x'00', 0)", key)
			return err
		})
	}
	for deadline := time.Now().Add(10 * time.Second); s.group.writes.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the holding write did not start")
		}
		runtime.Gosched()
	}
	errs := make(chan error, 3)
	go func() { errs <- insert(bg, "before") }()
	waitQueued(1)
	slowCtx, cancel := context.WithCancel(bg)
	started := make(chan struct{})
	go func() {
		errs <- s.inTx(slowCtx, func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			_, err := tx.ExecContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
				INSERT INTO plugin_state (plugin, key, value, updated_at) SELECT 'p', 'slow', x'00', x FROM c WHERE x = 100000`)
			return err
		})
	}()
	waitQueued(2)
	go func() { errs <- insert(bg, "after") }()
	waitQueued(3)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	<-started
	time.Sleep(20 * time.Millisecond) // the slow statement is running
	cancel()
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a write of the shared transaction failed: %v", err)
		}
	}
	kvs, err := s.StateList(bg, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 3 {
		t.Fatalf("%d writes committed, want 3 (before, slow, after)", len(kvs))
	}
}
