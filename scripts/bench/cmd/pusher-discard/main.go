// Command pusher-discard is the benchmark's pusher: it accepts every Push
// at once and keeps nothing, so a benchmark measures the gateway and the
// plugin boundary, not a destination.
package main

import (
	"context"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/serve"
)

type discard struct{}

func (discard) Info() sdk.Info {
	return sdk.Info{Name: "discard", Version: "1.0.0", Description: "accepts and drops every row (benchmarks)"}
}

func (discard) Start(context.Context, sdk.Host) error { return nil }

func (discard) Push(context.Context, sdk.PushRequest) error { return nil }

func main() { serve.Pusher(discard{}) }
