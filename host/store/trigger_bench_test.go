package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/store"
)

// BenchmarkTriggerPath is the control-tower's trigger path in the store:
// 64 writers insert keyed triggers (a watcher's Emit) while one relay
// claims the outbox 500 at a time and settles what it claimed, until
// every trigger is settled. With BENCH_POSTGRES=1 it also runs on
// PostgreSQL.
func BenchmarkTriggerPath(b *testing.B) {
	backends := []string{"sqlite"}
	if os.Getenv("BENCH_POSTGRES") != "" {
		backends = append(backends, "postgres")
	}
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			cfg := store.Config{DataDir: b.TempDir()}
			if backend == "postgres" {
				cfg.DatabaseURL = testkit.PostgresURL(b)
			}
			s := open(b, cfg)
			ctx := context.Background()
			body := []byte(`{"uuid":"0123456789abcdef","apiVersion":"OT-2/v1alpha1/Bench","protocol":"Burst","spec":{"mix":true,"volume":150,"wells":96},"metadata":{"source":"watcher"}}`)
			var next, settled atomic.Int64
			n := int64(b.N)
			run := time.Now().UnixNano()
			b.ResetTimer()
			cpu0 := cpuTime()
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= n {
							return
						}
						uuid := fmt.Sprintf("%016x", uint64(run)+uint64(i))
						_, _, err := s.InsertTrigger(ctx, store.Trigger{
							UUID: uuid, IdempotencyKey: fmt.Sprintf("burst:%d-%d", run, i), APIVersion: "OT-2/v1alpha1/Bench",
							Protocol: "Burst", Body: body, Source: "watcher:burst",
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for settled.Load() < n && !b.Failed() {
					entries, err := s.ClaimOutbox(ctx, "bench", 500, time.Minute)
					if err != nil {
						b.Error(err)
						return
					}
					if len(entries) == 0 {
						time.Sleep(time.Millisecond)
						continue
					}
					ids := make([]int64, len(entries))
					for i, e := range entries {
						ids[i] = e.ID
					}
					if err := s.Settle(ctx, "bench", ids, nil, time.Now()); err != nil {
						b.Error(err)
						return
					}
					settled.Add(int64(len(ids)))
				}
			})
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "triggers/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/trigger")
		})
	}
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
