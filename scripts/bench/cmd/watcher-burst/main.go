// Command watcher-burst is the benchmark's watcher: when its go file
// appears it emits COUNT triggers from CONCURRENCY goroutines as fast as
// the control-tower acknowledges them, then idles.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/serve"
)

type config struct {
	GoFile      string `env:"GO_FILE,required" help:"emitting starts when this file exists"`
	Count       int    `env:"COUNT" envDefault:"5000" help:"triggers to emit"`
	Concurrency int    `env:"CONCURRENCY" envDefault:"64" help:"emitting goroutines"`
	Run         string `env:"RUN" envDefault:"0" help:"distinguishes the idempotency keys of runs"`
}

type burst struct{ cfg config }

func (b *burst) Info() sdk.Info {
	return sdk.Info{Name: "burst", Version: "1.0.0", Description: "emits a burst of triggers (benchmarks)", Config: &b.cfg}
}

func (b *burst) Run(ctx context.Context, host sdk.WatcherHost) error {
	for {
		if _, err := os.Stat(b.cfg.GoFile); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	spec, _ := json.Marshal(map[string]any{"wells": 96, "volume": 150, "mix": true})
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, b.cfg.Concurrency)
	for range b.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.cfg.Count) {
					return
				}
				t := sdk.Trigger{APIVersion: "OT-2/v1alpha1/Bench", Protocol: "Burst", Spec: spec}
				if _, err := host.Emit(ctx, t, fmt.Sprintf("burst-%s-%d", b.cfg.Run, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	host.Logger().Info("burst emitted", "count", b.cfg.Count)
	<-ctx.Done()
	return nil
}

func main() { serve.Watcher(&burst{}) }
