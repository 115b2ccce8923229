package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// This file is the host's entry point into the contract: what a service
// needs to launch plugins and talk to them through plain Go interfaces.

// ProtocolVersion is the plugin protocol version this SDK speaks.
const ProtocolVersion = 1

// MaxMessageBytes bounds one gRPC message between host and plugin.
const MaxMessageBytes = 64 << 20

// InstanceEnv is the variable through which the host tells a plugin its
// instance name (the file name without its kind prefix).
const InstanceEnv = "ROUTING_PLUGIN_INSTANCE"

// LogLevelEnv is the variable through which the host sets a plugin's log
// level (trace, debug, info, warn, error).
const LogLevelEnv = "ROUTING_PLUGIN_LOG_LEVEL"

// Handshake returns the go-plugin handshake shared by hosts and plugins.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "ROUTING_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "d2c6a4f0-routing-layer-plugin",
	}
}

// HostPlugins returns the plugin sets a host passes to go-plugin as
// ClientConfig.VersionedPlugins. Dispensing "watcher" yields a
// WatcherClient, "pusher" a PusherClient.
func HostPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {
			string(KindWatcher): &watcherPlugin{},
			string(KindPusher):  &pusherPlugin{},
		},
	}
}

// GRPCDialOptions returns the dial options a host passes to go-plugin as
// ClientConfig.GRPCDialOptions (raised message limits).
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
	)}
}

// PluginInfo is a plugin's description as the host sees it.
type PluginInfo struct {
	// Name is the implementation's name.
	Name string `json:"name"`
	// Kind is the plugin's kind.
	Kind Kind `json:"kind"`
	// Version is the plugin's own version.
	Version string `json:"version"`
	// SDKVersion is the version of the SDK the plugin was built with.
	SDKVersion string `json:"sdkVersion"`
	// Description says in one line what the plugin does.
	Description string `json:"description,omitempty"`
	// Config lists the configuration keys the plugin reads.
	Config []ConfigKey `json:"config"`
	// Language is the language the plugin is written in, as its SDK
	// reports it: "go", "python"; empty for plugins that predate it.
	Language string `json:"language,omitempty"`
}

// PluginClient is the host's handle on a plugin of any kind.
type PluginClient interface {
	// Info asks the plugin to describe itself.
	Info(ctx context.Context) (PluginInfo, error)
}

// Emission is a trigger a watcher emitted, as the host receives it.
type Emission struct {
	Trigger Trigger
	// Key is the idempotency key, "" when none.
	Key string
}

// TriggerSink receives a watcher's emissions on the host side.
type TriggerSink interface {
	// Accept stores the emitted trigger durably and returns its receipt.
	// Errors matching ErrInvalid are reported to the plugin as rejections
	// of that trigger; other errors are reported as ErrUnavailable.
	Accept(ctx context.Context, e Emission) (Receipt, error)
}

// WatcherClient is the host's handle on a watcher plugin.
type WatcherClient interface {
	PluginClient
	// Run runs the watcher until ctx is done (it then returns nil) or the
	// watcher stops. Triggers go to sink; the watcher's State calls are
	// served by state. A dead plugin process yields ErrPluginExited.
	Run(ctx context.Context, sink TriggerSink, state State) error
}

// PusherClient is the host's handle on a pusher plugin.
type PusherClient interface {
	PluginClient
	// Start configures the pusher and gives it its State; call it once
	// before Push.
	Start(ctx context.Context, state State) error
	// Push delivers rows. Errors match ErrDelivered (the rows were
	// delivered; the message is the plugin's note), ErrSkipped,
	// ErrPermanent or ErrPluginExited; any other error is retryable.
	Push(ctx context.Context, req PushRequest) error
	// PushEncoded is Push with the rows given already encoded (req.Rows
	// must be empty): the plugin receives the same PushRequest.
	PushEncoded(ctx context.Context, req PushRequest, rows EncodedRows) error
}
