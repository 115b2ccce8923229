// Command watcher-riffyn emits protocol triggers for runs started in
// Riffyn Nexus. See plugins/riffyn/README.md.
package main

import (
	"github.com/routinglayer/routing/plugins/riffyn/watcher"
	"github.com/routinglayer/routing/sdk/serve"
)

func main() { serve.Watcher(watcher.New()) }
