// Command pusher-jsonl appends pushed data rows to one JSON-lines file per
// trigger. See examples/jsonl.
package main

import (
	"github.com/routinglayer/routing/examples/jsonl"
	"github.com/routinglayer/routing/sdk"
)

func main() { sdk.ServePusher(jsonl.New()) }
