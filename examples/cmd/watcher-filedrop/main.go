// Command watcher-filedrop emits a protocol trigger for each JSON file
// dropped into a directory. See examples/filedrop.
package main

import (
	"github.com/routinglayer/routing/examples/filedrop"
	"github.com/routinglayer/routing/sdk/serve"
)

func main() { serve.Watcher(filedrop.New()) }
