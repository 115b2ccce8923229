// Package poll runs a function at a fixed interval until its context
// ends: the host's loops that look at something again and again (plugin
// health, the plugin list, the spool's usage, the instance heartbeat),
// each with one ticker it stops.
package poll

import (
	"context"
	"time"
)

// Every calls f every interval, the first time one interval after the
// call, until ctx is done (f is not called once it is) or f returns
// false. It returns then.
func Every(ctx context.Context, interval time.Duration, f func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil || !f() {
			return
		}
	}
}
