package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/store"
)

func acquire(t *testing.T, s *store.Store, name, holder string, ttl time.Duration) (store.Lease, bool) {
	t.Helper()
	l, ok, err := s.LeaseAcquire(context.Background(), name, holder, ttl)
	must(t, err)
	return l, ok
}

func TestLeaseAcquireRenewExpireReleaseTakeover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		const ttl = 400 * time.Millisecond
		if _, err := s.LeaseGet(ctx, "riffyn"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("lease before any acquire: %v, want ErrNotFound", err)
		}
		first, ok := acquire(t, s, "riffyn", "a", ttl)
		if !ok || first.Holder != "a" || first.Stopped || time.Until(first.ExpiresAt) > ttl+time.Second || time.Until(first.ExpiresAt) < -time.Second {
			t.Fatalf("first acquire: %+v, %v", first, ok)
		}
		if l, ok := acquire(t, s, "riffyn", "b", ttl); ok || l.Holder != "a" {
			t.Fatalf("b acquired a held lease: %+v, %v", l, ok)
		}
		// Another name is another lease.
		if l, ok := acquire(t, s, "filedrop", "b", ttl); !ok || l.Holder != "b" {
			t.Fatalf("b could not take another name: %+v, %v", l, ok)
		}
		renewed, ok := acquire(t, s, "riffyn", "a", ttl)
		if !ok || renewed.Holder != "a" || !renewed.ExpiresAt.After(first.ExpiresAt) {
			t.Fatalf("renewal: %+v, %v (first expiry %s)", renewed, ok, first.ExpiresAt)
		}

		// a stops renewing: b takes over once the lease expires, not before.
		var taken store.Lease
		testkit.WaitFor(t, 10*time.Second, "b to take the expired lease", func() bool {
			var ok bool
			taken, ok = acquire(t, s, "riffyn", "b", ttl)
			return ok
		})
		if now := time.Now(); now.Before(renewed.ExpiresAt.Add(-50 * time.Millisecond)) {
			t.Fatalf("b took the lease at %s, before a's expiry %s", now, renewed.ExpiresAt)
		}
		if taken.Holder != "b" {
			t.Fatalf("takeover: %+v", taken)
		}
		// a's renewal now fails and names the new holder.
		if l, ok := acquire(t, s, "riffyn", "a", ttl); ok || l.Holder != "b" {
			t.Fatalf("a renewed a lease b holds: %+v, %v", l, ok)
		}

		// A release by a non-holder changes nothing; the holder's frees it
		// at once.
		must(t, s.LeaseRelease(ctx, "riffyn", "a"))
		if l, _ := s.LeaseGet(ctx, "riffyn"); l.Holder != "b" {
			t.Fatalf("a released b's lease: %+v", l)
		}
		must(t, s.LeaseRelease(ctx, "riffyn", "b"))
		if l, _ := s.LeaseGet(ctx, "riffyn"); l.Holder != "" || !l.ExpiresAt.IsZero() {
			t.Fatalf("released lease: %+v", l)
		}
		if l, ok := acquire(t, s, "riffyn", "a", time.Hour); !ok || l.Holder != "a" {
			t.Fatalf("a could not take a released lease: %+v, %v", l, ok)
		}
		if _, _, err := s.LeaseAcquire(ctx, "riffyn", "", ttl); err == nil {
			t.Fatal("acquire without a holder succeeded")
		}
		if _, _, err := s.LeaseAcquire(ctx, "riffyn", "a", 0); err == nil {
			t.Fatal("acquire with a zero ttl succeeded")
		}
	})
}

func TestLeaseOneHolderAmongMany(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		for round := range 5 {
			name := fmt.Sprintf("race-%d", round)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				holders []string
				seen    = map[string]bool{}
			)
			for i := range 8 {
				wg.Go(func() {
					holder := fmt.Sprintf("instance-%d", i)
					l, ok, err := s.LeaseAcquire(context.Background(), name, holder, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					seen[l.Holder] = true
					if ok {
						holders = append(holders, holder)
					}
				})
			}
			wg.Wait()
			if len(holders) != 1 || len(seen) != 1 || !seen[holders[0]] {
				t.Fatalf("round %d: acquired by %v, holders seen %v; want exactly one", round, holders, seen)
			}
		}
	})
}

func TestLeaseStopStartRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		if _, ok := acquire(t, s, "w", "a", time.Minute); !ok {
			t.Fatal("no lease")
		}
		must(t, s.LeaseStop(ctx, "w"))
		// The holder's renewal fails and names the stop; nobody else
		// acquires it either.
		if l, ok := acquire(t, s, "w", "a", time.Minute); ok || !l.Stopped || l.Holder != "a" {
			t.Fatalf("renewal under a stop: %+v, %v", l, ok)
		}
		must(t, s.LeaseRelease(ctx, "w", "a"))
		if l, ok := acquire(t, s, "w", "b", time.Minute); ok || !l.Stopped || l.Holder != "" {
			t.Fatalf("acquire under a stop: %+v, %v", l, ok)
		}

		must(t, s.LeaseStart(ctx, "w"))
		l, ok := acquire(t, s, "w", "b", time.Minute)
		if !ok || l.Stopped || l.Starts != 1 || l.Restarts != 0 {
			t.Fatalf("after start: %+v, %v", l, ok)
		}
		must(t, s.LeaseRestart(ctx, "w"))
		must(t, s.LeaseRestart(ctx, "w"))
		l, ok = acquire(t, s, "w", "b", time.Minute)
		if !ok || l.Restarts != 2 || l.Starts != 1 {
			t.Fatalf("after restarts: %+v, %v", l, ok)
		}
		// A restart also ends a stop.
		must(t, s.LeaseStop(ctx, "w"))
		must(t, s.LeaseRestart(ctx, "w"))
		if l, ok = acquire(t, s, "w", "b", time.Minute); !ok || l.Stopped || l.Restarts != 3 {
			t.Fatalf("restart after a stop: %+v, %v", l, ok)
		}

		// A stop of a name nobody has asked for is kept for the first.
		must(t, s.LeaseStop(ctx, "fresh"))
		if l, ok := acquire(t, s, "fresh", "a", time.Minute); ok || !l.Stopped {
			t.Fatalf("acquire of a name stopped before first use: %+v, %v", l, ok)
		}
		must(t, s.LeaseStart(ctx, "fresh"))
		if _, ok := acquire(t, s, "fresh", "a", time.Minute); !ok {
			t.Fatal("start did not free the name")
		}
	})
}
