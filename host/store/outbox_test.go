package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/store"
)

func insertTriggers(tb testing.TB, s *store.Store, prefix string, n int) {
	tb.Helper()
	for i := range n {
		if _, _, err := s.InsertTrigger(context.Background(), trig(fmt.Sprintf("%s%04d", prefix, i), "")); err != nil {
			tb.Fatal(err)
		}
	}
}

// Several owners, each on its own connection pool to the same database
// (as separate instances are; with SQLite, whose database has one
// instance, they share the store), claim and settle the outbox
// concurrently: no entry is handed to two of them, and every entry is
// handed out once.
func TestConcurrentOutboxClaimsNeverShareAnEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg store.Config, s *store.Store) {
		const entries, owners = 600, 3
		insertTriggers(t, s, "c", entries)
		var (
			mu      sync.Mutex
			claimed = map[int64]string{} // entry -> owner
			shared  []string
			wg      sync.WaitGroup
		)
		for o := range owners {
			owner := fmt.Sprintf("instance-%d", o)
			db := s
			if cfg.DatabaseURL != "" {
				db = open(t, cfg)
			}
			wg.Go(func() {
				ctx := context.Background()
				for {
					got, err := db.ClaimOutbox(ctx, owner, 25, time.Minute)
					if err != nil {
						t.Errorf("%s: claim: %v", owner, err)
						return
					}
					if len(got) == 0 {
						return
					}
					ids := make([]int64, len(got))
					mu.Lock()
					for i, e := range got {
						ids[i] = e.ID
						if prev, ok := claimed[e.ID]; ok {
							shared = append(shared, fmt.Sprintf("entry %d (%s): %s and %s", e.ID, e.Trigger.UUID, prev, owner))
						}
						claimed[e.ID] = owner
					}
					mu.Unlock()
					if err := db.Settle(ctx, owner, ids, nil, time.Now()); err != nil {
						t.Errorf("%s: settle: %v", owner, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if len(shared) > 0 {
			t.Fatalf("%d entries claimed twice, e.g. %s", len(shared), shared[0])
		}
		perOwner := map[string]int{}
		for _, o := range claimed {
			perOwner[o]++
		}
		if len(claimed) != entries {
			t.Fatalf("%d entries claimed, want %d", len(claimed), entries)
		}
		if n, _ := s.PendingCount(context.Background()); n != 0 {
			t.Fatalf("%d entries left in the outbox", n)
		}
		t.Logf("%d entries, claimed once each: %v", entries, perOwner)
	})
}

func TestExpiredOutboxClaimIsTakenOver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		insertTriggers(t, s, "e", 2)
		dead, err := s.ClaimOutbox(ctx, "dead", 10, 200*time.Millisecond)
		if err != nil || len(dead) != 2 {
			t.Fatalf("claim: %+v %v", dead, err)
		}
		if claims, _ := s.OutboxClaims(ctx); claims["dead"] != 2 {
			t.Fatalf("claims %v, want dead: 2", claims)
		}
		var taken []store.OutboxEntry
		testkit.WaitFor(t, 10*time.Second, "the expired claim to be taken over", func() bool {
			taken, err = s.ClaimOutbox(ctx, "alive", 10, time.Minute)
			must(t, err)
			return len(taken) > 0
		})
		if len(taken) != 2 || taken[0].ReclaimedFrom != "dead" || taken[1].ReclaimedFrom != "dead" {
			t.Fatalf("taken over: %+v, want both, reclaimed from dead", taken)
		}
		if claims, _ := s.OutboxClaims(ctx); claims["alive"] != 2 || claims["dead"] != 0 {
			t.Fatalf("claims %v, want alive: 2", claims)
		}
		// The dead owner's late outcomes change nothing: the entries are
		// alive's now.
		must(t, s.Settle(ctx, "dead", []int64{dead[0].ID}, nil, time.Now()))
		must(t, s.ReleaseOutbox(ctx, "dead", []store.OutboxRelease{{ID: dead[1].ID}}))
		if n, _ := s.PendingCount(ctx); n != 2 {
			t.Fatalf("pending %d after the dead owner's settle, want 2", n)
		}
		if again, _ := s.ClaimOutbox(ctx, "third", 10, time.Minute); len(again) != 0 {
			t.Fatalf("entries held by alive claimed again: %+v", again)
		}
		must(t, s.Settle(ctx, "alive", []int64{taken[0].ID, taken[1].ID}, nil, time.Now()))
		if tr, _ := s.GetTrigger(ctx, "e0000"); tr.Status != store.StatusPublished {
			t.Fatalf("status %s after alive's settle", tr.Status)
		}
	})
}

func TestReleasedOutboxClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		insertTriggers(t, s, "r", 3)
		got, err := s.ClaimOutbox(ctx, "a", 10, time.Hour)
		if err != nil || len(got) != 3 {
			t.Fatalf("claim: %+v %v", got, err)
		}
		// Released without counting: due again at once, attempts unchanged.
		must(t, s.ReleaseOutbox(ctx, "a", []store.OutboxRelease{{ID: got[0].ID}}))
		// A failed attempt: due again after the delay, counted.
		must(t, s.ReleaseOutbox(ctx, "a", []store.OutboxRelease{{ID: got[1].ID, Failed: true, Delay: time.Hour, Error: "nacked"}}))
		b, err := s.ClaimOutbox(ctx, "b", 10, time.Hour)
		if err != nil || len(b) != 1 || b[0].ID != got[0].ID || b[0].Attempts != 0 || b[0].ReclaimedFrom != "" {
			t.Fatalf("after release: %+v %v, want the released entry alone, not reclaimed", b, err)
		}
		// An instance restarted under the same name frees what its
		// previous run held.
		if n, err := s.ReleaseOutboxClaims(ctx, "a"); err != nil || n != 1 {
			t.Fatalf("release claims of a: %d %v, want 1", n, err)
		}
		c, err := s.ClaimOutbox(ctx, "c", 10, time.Hour)
		if err != nil || len(c) != 1 || c[0].ID != got[2].ID || c[0].ReclaimedFrom != "" {
			t.Fatalf("after a's restart: %+v %v", c, err)
		}
		if claims, _ := s.OutboxClaims(ctx); claims["b"] != 1 || claims["c"] != 1 || len(claims) != 2 {
			t.Fatalf("claims %v, want b: 1, c: 1", claims)
		}
	})
}

func TestInstancesHeartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		started := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
		must(t, s.Heartbeat(ctx, "control-tower", "tower-2", started))
		must(t, s.Heartbeat(ctx, "control-tower", "tower-1", started))
		must(t, s.Heartbeat(ctx, "control-tower", "tower-1", started))
		must(t, s.Heartbeat(ctx, "data-gateway", "tower-1", started))
		list, err := s.Instances(ctx, "control-tower", time.Minute)
		if err != nil || len(list) != 2 || list[0].ID != "tower-1" || !list[0].StartedAt.Equal(started) || list[0].LastSeen.Before(started) {
			t.Fatalf("instances: %+v %v", list, err)
		}
		if list, _ := s.Instances(ctx, "control-tower", -time.Second); len(list) != 0 {
			t.Fatalf("instances seen in the future: %+v", list)
		}
		must(t, s.RemoveInstance(ctx, "control-tower", "tower-2"))
		must(t, s.PruneInstances(ctx, "data-gateway", -time.Second))
		if list, _ := s.Instances(ctx, "control-tower", time.Hour); len(list) != 1 || list[0].ID != "tower-1" {
			t.Fatalf("after removing tower-2: %+v", list)
		}
		if list, _ := s.Instances(ctx, "data-gateway", time.Hour); len(list) != 0 {
			t.Fatalf("after pruning: %+v", list)
		}

		// What they hold: outbox claims and watcher leases.
		insertTriggers(t, s, "h", 3)
		_, err = s.ClaimOutbox(ctx, "tower-1", 2, time.Minute)
		must(t, err)
		for _, name := range []string{"riffyn", "filedrop"} {
			_, ok, err := s.LeaseAcquire(ctx, name, "tower-1", time.Minute)
			if err != nil || !ok {
				t.Fatalf("lease %s: %v %v", name, ok, err)
			}
		}
		h, err := s.Holdings(ctx)
		if err != nil || h.OutboxClaims["tower-1"] != 2 || fmt.Sprint(h.WatcherLeases["tower-1"]) != "[filedrop riffyn]" {
			t.Fatalf("holdings: %+v %v", h, err)
		}
	})
}
