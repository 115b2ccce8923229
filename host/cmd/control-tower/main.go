// Command control-tower runs the routing layer's control plane: it stores
// protocol triggers from watcher plugins and HTTP clients and publishes
// them to RabbitMQ. Configuration comes from the environment; see the
// README. The command is service.Main over controltower.Start.
package main

import (
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/service"
)

func main() { service.Main("control-tower", controltower.Start) }
