package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/store"
)

// claimHeads claims the head of each uuid's line, up to limit.
func claimHeads(ctx context.Context, s *store.Store, pusher, owner string, limit int) ([]store.ClaimedTask, error) {
	batches, err := s.ClaimBatches(ctx, pusher, owner, limit, func(string) int { return 0 }, 1<<30, time.Minute)
	var out []store.ClaimedTask
	for _, b := range batches {
		out = append(out, b...)
	}
	return out, err
}

// finish records the final state of one claimed task.
func finish(ctx context.Context, s *store.Store, id int64, owner string, state store.TaskState, lastErr string) error {
	_, err := s.FinishTasks(ctx, []int64{id}, owner, state, lastErr)
	return err
}

func claimIDs(tb testing.TB, s *store.Store, pusher, owner string) []int64 {
	tb.Helper()
	got, err := claimHeads(context.Background(), s, pusher, owner, 100)
	must(tb, err)
	var ids []int64
	for _, c := range got {
		ids = append(ids, c.DeliveryID)
	}
	return ids
}

func TestSpoolOrderPerUUID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		var ids []int64
		for _, uuid := range []string{"a", "b", "a", "a", "b"} {
			d, err := s.InsertDelivery(ctx, uuid, []byte(`[{"data":{"k":1}}]`), 1, []string{"jsonl", "riffyn"})
			must(t, err)
			ids = append(ids, d.ID)
		}
		// Only the oldest pending task of each uuid is claimable.
		first, err := claimHeads(ctx, s, "jsonl", "me", 100)
		must(t, err)
		if len(first) != 2 || first[0].DeliveryID != ids[0] || first[1].DeliveryID != ids[1] || string(first[0].Rows) != `[{"data":{"k":1}}]` {
			t.Fatalf("first claim: %+v", first)
		}
		if again := claimIDs(t, s, "jsonl", "other"); len(again) != 0 {
			t.Fatalf("claimed tasks were claimed again: %v", again)
		}
		// The other pusher has its own line.
		if other := claimIDs(t, s, "riffyn", "me"); len(other) != 2 {
			t.Fatalf("riffyn claim: %v", other)
		}
		must(t, finish(ctx, s, first[0].ID, "me", store.TaskDelivered, ""))
		if next := claimIDs(t, s, "jsonl", "me"); len(next) != 1 || next[0] != ids[2] {
			t.Fatalf("after a's first delivery: %v, want [%d]", next, ids[2])
		}
		if err := finish(ctx, s, first[0].ID, "me", store.TaskDelivered, ""); !errors.Is(err, store.ErrNotClaimed) {
			t.Fatalf("finishing a finished task: %v", err)
		}
		if err := finish(ctx, s, first[1].ID, "intruder", store.TaskDelivered, ""); !errors.Is(err, store.ErrNotClaimed) {
			t.Fatalf("finishing someone else's task: %v", err)
		}
		// A restarted owner frees what it held: b's task is claimable again.
		if n, err := s.ReleaseClaims(ctx, "me"); err != nil || n != 4 {
			t.Fatalf("release: %d %v, want 4 (jsonl: a2, b1; riffyn: a1, b1)", n, err)
		}
		if got := claimIDs(t, s, "jsonl", "other"); len(got) != 2 || got[0] != ids[1] || got[1] != ids[2] {
			t.Fatalf("after release: %v, want [%d %d]", got, ids[1], ids[2])
		}
	})
}

func TestSpoolRetryDeadLetterAndBacklog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		d, err := s.InsertDelivery(ctx, "u", []byte(`[]`), 0, []string{"p"})
		must(t, err)
		_, err = s.InsertDelivery(ctx, "u", []byte(`[]`), 0, []string{"p"})
		must(t, err)
		c, err := claimHeads(ctx, s, "p", "me", 10)
		must(t, err)
		must(t, s.RetryTask(ctx, c[0].ID, "me", time.Hour, "upstream 503", true))
		if got := claimIDs(t, s, "p", "me"); len(got) != 0 {
			t.Fatalf("a task waiting for its retry must hold back the uuid's later tasks: %v", got)
		}
		if err := s.RetryTask(ctx, c[0].ID, "me", 0, "", false); !errors.Is(err, store.ErrNotClaimed) {
			t.Fatalf("a released task is no longer the owner's: %v", err)
		}
		_, tasks, err := s.GetDelivery(ctx, d.ID)
		must(t, err)
		if tasks[0].Attempts != 1 || tasks[0].LastError != "upstream 503" || tasks[0].State != store.TaskPending {
			t.Fatalf("after retry: %+v", tasks[0])
		}
		backlog, err := s.Backlog(ctx)
		must(t, err)
		if backlog["p"] != 2 {
			t.Fatalf("backlog %v, want p=2", backlog)
		}
	})
}

func TestSpoolDeadLetters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		first, err := s.InsertDelivery(ctx, "u", []byte(`[]`), 0, []string{"p", "q"})
		must(t, err)
		second, err := s.InsertDelivery(ctx, "u", []byte(`[]`), 0, []string{"p"})
		must(t, err)
		c, err := claimHeads(ctx, s, "p", "me", 10)
		must(t, err)
		must(t, finish(ctx, s, c[0].ID, "me", store.TaskDead, "no such column"))
		// A dead task no longer holds back the uuid's line.
		if got := claimIDs(t, s, "p", "me"); len(got) != 1 || got[0] != second.ID {
			t.Fatalf("after dead letter: %v", got)
		}
		dead, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pusher: "p"})
		must(t, err)
		if len(dead) != 1 || dead[0].DeliveryID != first.ID || dead[0].LastError != "no such column" || dead[0].Attempts != 1 {
			t.Fatalf("dead letters: %+v", dead)
		}
		if none, _ := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pusher: "q"}); len(none) != 0 {
			t.Fatalf("pusher filter: %+v", none)
		}
		retried, _, err := s.RetryDeadLetter(ctx, dead[0].ID)
		if err != nil || retried.State != store.TaskPending || retried.Attempts != 0 {
			t.Fatalf("retry dead letter: %+v %v", retried, err)
		}
		if _, _, err := s.RetryDeadLetter(ctx, dead[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("retrying a task that is not dead: %v", err)
		}
		if _, _, err := s.GetDelivery(ctx, 99999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown delivery: %v", err)
		}
	})
}

func TestSpoolConcurrentClaimsNeverShareATask(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg store.Config, s *store.Store) {
		ctx := context.Background()
		const uuids, per = 20, 10
		for i := range uuids * per {
			_, err := s.InsertDelivery(ctx, fmt.Sprintf("u%d", i%uuids), []byte(`[]`), 0, []string{"p"})
			must(t, err)
		}
		// Two "instances": with PostgreSQL, two separate stores.
		other := s
		if cfg.DatabaseURL != "" {
			other = open(t, cfg)
		}
		var (
			mu        sync.Mutex
			delivered = map[int64]string{}
			dups      []int64
			wg        sync.WaitGroup
		)
		for w, st := range []*store.Store{s, other, s, other} {
			owner := fmt.Sprintf("w%d", w)
			wg.Go(func() {
				for idle := 0; idle < 20; {
					claimed, err := claimHeads(ctx, st, "p", owner, 5)
					if err != nil {
						t.Error(err)
						return
					}
					if len(claimed) == 0 {
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					for _, c := range claimed {
						mu.Lock()
						if prev, ok := delivered[c.ID]; ok {
							dups = append(dups, c.ID)
							t.Errorf("task %d claimed by %s and %s", c.ID, prev, owner)
						}
						delivered[c.ID] = owner
						mu.Unlock()
						if err := finish(ctx, st, c.ID, owner, store.TaskDelivered, ""); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if len(delivered) != uuids*per || len(dups) != 0 {
			t.Fatalf("delivered %d of %d tasks, %d twice", len(delivered), uuids*per, len(dups))
		}
	})
}

func rows300(string) int { return 300 }

func TestClaimBatchesTakesTheLineBehindEachHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		ids := map[string][]int64{}
		for i, uuid := range []string{"a", "a", "b", "a", "a", "a", "b"} {
			n := 100
			if i == 4 {
				n = 250 // does not fit beside a's first three
			}
			d, err := s.InsertDelivery(ctx, uuid, fmt.Appendf(nil, `[{"data":{"n":%d}}]`, i), n, []string{"p"})
			must(t, err)
			ids[uuid] = append(ids[uuid], d.ID)
		}
		batches, err := s.ClaimBatches(ctx, "p", "me", 10, rows300, 1<<30, time.Minute)
		must(t, err)
		deliveries := func(b []store.ClaimedTask) []int64 {
			var out []int64
			for _, c := range b {
				out = append(out, c.DeliveryID)
			}
			return out
		}
		if len(batches) != 2 {
			t.Fatalf("%d batches, want one per uuid", len(batches))
		}
		a, b := deliveries(batches[0]), deliveries(batches[1])
		if fmt.Sprint(a) != fmt.Sprint(ids["a"][:3]) || fmt.Sprint(b) != fmt.Sprint(ids["b"]) {
			t.Fatalf("batches %v and %v; want a's first three (300 rows) %v and all of b %v", a, b, ids["a"][:3], ids["b"])
		}
		// Nothing of a can be claimed while its head is out, by anyone.
		if more, err := s.ClaimBatches(ctx, "p", "other", 10, rows300, 1<<30, time.Minute); err != nil || len(more) != 0 {
			t.Fatalf("claimed again while held: %v %v", more, err)
		}
		var done []int64
		for _, c := range batches[0] {
			done = append(done, c.ID)
		}
		// Finishing fails, changing nothing, if one task is not ours.
		if _, err := s.FinishTasks(ctx, append(done, batches[1][0].ID+1000), "me", store.TaskDelivered, ""); !errors.Is(err, store.ErrNotClaimed) {
			t.Fatalf("finishing with a foreign task: %v", err)
		}
		_, err = s.FinishTasks(ctx, done, "me", store.TaskDelivered, "")
		must(t, err)
		next, err := s.ClaimBatches(ctx, "p", "me", 10, rows300, 1<<30, time.Minute)
		must(t, err)
		// a's next head has 250 rows: the 100 behind it do not fit.
		if len(next) != 1 || fmt.Sprint(deliveries(next[0])) != fmt.Sprint(ids["a"][3:4]) {
			t.Fatalf("after a's batch: %v, want %v", deliveries(next[0]), ids["a"][3:4])
		}
	})
}

func TestClaimBatchesBoundsTheBytesBehindEachHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		var ids []int64
		for _, size := range []int{400, 300, 300, 100} {
			d, err := s.InsertDelivery(ctx, "a", make([]byte, size), 1, []string{"p"})
			must(t, err)
			ids = append(ids, d.ID)
		}
		deliveries := func(batches [][]store.ClaimedTask) (out [][]int64) {
			for _, b := range batches {
				var ds []int64
				for _, c := range b {
					ds = append(ds, c.DeliveryID)
				}
				out = append(out, ds)
			}
			return out
		}
		// 900 bytes: the head (400) and one follower (300); the next 300
		// would pass the bound, and the line stops there, although the
		// 100 behind it would fit.
		batches, err := s.ClaimBatches(ctx, "p", "me", 10, rows300, 900, time.Minute)
		must(t, err)
		if got := deliveries(batches); fmt.Sprint(got) != fmt.Sprint([][]int64{ids[:2]}) {
			t.Fatalf("batches %v, want %v", got, [][]int64{ids[:2]})
		}
		var done []int64
		for _, c := range batches[0] {
			done = append(done, c.ID)
		}
		_, err = s.FinishTasks(ctx, done, "me", store.TaskDelivered, "")
		must(t, err)
		// A head larger than the bound is still claimed, alone.
		batches, err = s.ClaimBatches(ctx, "p", "me", 10, rows300, 200, time.Minute)
		must(t, err)
		if got := deliveries(batches); fmt.Sprint(got) != fmt.Sprint([][]int64{ids[2:3]}) {
			t.Fatalf("batches %v, want %v alone", got, ids[2:3])
		}
	})
}

// The spool's usage follows every change of a task's state: pending tasks
// per pusher, and the bytes of deliveries that still wait for a pusher,
// counted once per delivery.
func TestSpoolUsageFollowsTasks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ store.Config, s *store.Store) {
		ctx := context.Background()
		usage := func() store.SpoolUsage {
			t.Helper()
			u, err := s.Usage(ctx)
			must(t, err)
			return u
		}
		if u := usage(); len(u.Pending) != 0 || u.Bytes != 0 {
			t.Fatalf("empty spool: %+v", u)
		}
		first, err := s.InsertDelivery(ctx, "a", make([]byte, 100), 1, []string{"p", "q"})
		must(t, err)
		_, err = s.InsertDelivery(ctx, "b", make([]byte, 30), 1, []string{"p", "q"})
		must(t, err)
		if u := usage(); u.Pending["p"] != 2 || u.Pending["q"] != 2 || u.Bytes != 130 {
			t.Fatalf("two deliveries for two pushers: %+v, want 2 and 2 pending, 130 bytes", u)
		}
		claimed, err := claimHeads(ctx, s, "p", "me", 10)
		must(t, err)
		freed, err := s.FinishTasks(ctx, []int64{claimed[0].ID}, "me", store.TaskDelivered, "")
		must(t, err)
		if freed != 0 {
			t.Fatalf("q still waits for delivery %d, yet %d bytes were freed", first.ID, freed)
		}
		claimedQ, err := claimHeads(ctx, s, "q", "me", 10)
		must(t, err)
		freed, err = s.FinishTasks(ctx, []int64{claimedQ[0].ID}, "me", store.TaskDead, "broken")
		must(t, err)
		if u := usage(); freed != 100 || u.Bytes != 30 || u.Pending["p"] != 1 || u.Pending["q"] != 1 {
			t.Fatalf("after both tasks of delivery %d: freed %d, usage %+v; want 100 freed, 30 bytes left", first.ID, freed, u)
		}
		_, added, err := s.RetryDeadLetter(ctx, claimedQ[0].ID)
		must(t, err)
		if u := usage(); added != 100 || u.Bytes != 130 || u.Pending["q"] != 2 {
			t.Fatalf("retried dead letter: added %d, usage %+v; want 100 added, 130 bytes", added, u)
		}
		n, freed, err := s.DeadLetterPending(ctx, "q", "pusher q was removed")
		must(t, err)
		if u := usage(); n != 2 || freed != 100 || u.Bytes != 30 || u.Pending["q"] != 0 || u.Pending["p"] != 1 {
			t.Fatalf("dead-lettering q: %d tasks, %d bytes freed, usage %+v; want 2 tasks, 100 bytes (b still waits for p)", n, freed, u)
		}
		dead, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{Pusher: "q"})
		must(t, err)
		if len(dead) != 2 || dead[0].LastError != "pusher q was removed" || dead[0].Attempts != 0 {
			t.Fatalf("dead letters of q: %+v", dead)
		}
	})
}
