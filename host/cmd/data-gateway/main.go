// Command data-gateway runs the routing layer's data plane: it accepts
// data rows from service-layer programs, stores them durably and forwards
// them to every pusher plugin. Configuration comes from the environment;
// see the README. The command is service.Main over datagateway.Start.
package main

import (
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/service"
)

func main() { service.Main("data-gateway", datagateway.Start) }
