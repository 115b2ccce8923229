// Command pusher-riffyn writes data rows into the Riffyn run that
// triggered them. See plugins/riffyn/README.md.
package main

import (
	"github.com/routinglayer/routing/plugins/riffyn/pusher"
	"github.com/routinglayer/routing/sdk/serve"
)

func main() { serve.Pusher(pusher.New()) }
