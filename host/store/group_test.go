package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

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
			err := s.inTx(ctx, func(tx *sql.Tx) error {
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
