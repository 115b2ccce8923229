// Package serve runs a plugin: a plugin's main calls Watcher or Pusher
// and nothing else.
//
//	func main() { serve.Pusher(jsonl.New()) }
//
// Serving loads the configuration struct that Info points to from the
// instance's PLUGIN_<NAME>_* variables, gives the plugin its logger (JSON
// lines on stderr, which the service re-logs under the instance name),
// raises the gRPC message limits to 64 MiB, answers the service's health
// checks, and ends the process when the service stops it or dies.
//
// Unless the plugin set one itself, serving sets OpenTelemetry's global
// propagator to W3C Trace Context, the services' own: a call the plugin
// makes with Push's ctx through OpenTelemetry's instrumentation (e.g.
// otelhttp.NewTransport) then carries the push span's traceparent.
//
// A plugin must never write to stdout: go-plugin reads its handshake from
// there, and a service refuses a plugin whose first line is anything else.
// Started by hand, outside a service, Watcher and Pusher print what the
// file is and exit with status 1.
package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginside"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// Watcher serves w as a watcher plugin. It returns only when the service
// stops the plugin.
func Watcher(w sdk.Watcher) {
	rt := pluginside.NewRuntime(wire.KindWatcher)
	run(rt, plugin.PluginSet{wire.KindWatcher: pluginside.WatcherPlugin(w, rt)})
}

// Pusher serves p as a pusher plugin. It returns only when the service
// stops the plugin.
func Pusher(p sdk.Pusher) {
	rt := pluginside.NewRuntime(wire.KindPusher)
	run(rt, plugin.PluginSet{wire.KindPusher: pluginside.PusherPlugin(p, rt)})
}

func run(rt pluginside.Runtime, set plugin.PluginSet) {
	hs := wire.Handshake()
	if os.Getenv(hs.MagicCookieKey) != hs.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a routing-layer plugin: install it in the service's PLUGINS_DIR, the service runs it.\n", filepath.Base(os.Args[0]))
		os.Exit(1)
	}
	if len(otel.GetTextMapPropagator().Fields()) == 0 {
		// The default propagator writes nothing.
		otel.SetTextMapPropagator(propagation.TraceContext{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pluginside.ExitWithParent(ctx, os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{wire.ProtocolVersion: set},
		GRPCServer:       pluginside.NewGRPCServer,
		// go-plugin's own messages, at warn and above, as JSON lines.
		Logger: hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Output: os.Stderr, Level: hclog.Warn, JSONFormat: true}),
	})
}
