// Command pusher-jsonl appends pushed data rows to one JSON-lines file per
// trigger. See examples/jsonl.
package main

import (
	"github.com/routinglayer/routing/examples/jsonl"
	"github.com/routinglayer/routing/sdk/serve"
)

func main() { serve.Pusher(jsonl.New()) }
