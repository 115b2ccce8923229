// Package pluginhost is the service's end of the plugin protocol: what a
// host needs to launch plugin processes with go-plugin and talk to them
// through plain Go interfaces. Plugin authors do not need it; they write
// against package sdk and serve with package serve.
//
// A host passes Handshake, Plugins and GRPCDialOptions to go-plugin's
// ClientConfig, dispenses "watcher" or "pusher" from the client (a
// WatcherClient or a PusherClient), checks the Manifest that Info returns
// against the file name and the environment (CheckConfig), then runs the
// watcher or starts the pusher and pushes rows to it. Errors keep the
// contract's vocabulary: they match sdk.ErrSkipped, sdk.ErrPermanent,
// sdk.ErrConfig and the others with errors.Is, and a dead plugin process
// is ErrPluginExited.
package pluginhost

import (
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// ProtocolVersion is the plugin protocol version this SDK speaks (see
// sdk/CHANGELOG.md, "Versions").
const ProtocolVersion = wire.ProtocolVersion

// MaxMessageBytes bounds one gRPC message between host and plugin (64 MiB).
const MaxMessageBytes = wire.MaxMessageBytes

// InstanceEnv is the variable through which the host tells a plugin its
// instance name (the file name without its kind prefix); LogLevelEnv sets
// its log level (trace, debug, info, warn, error).
const (
	InstanceEnv = wire.InstanceEnv
	LogLevelEnv = wire.LogLevelEnv
)

// ErrPluginExited is what the host sees when a plugin process died or its
// connection broke, whatever the gRPC status was.
var ErrPluginExited = wire.ErrPluginExited

// Kind is the kind of a plugin; the host checks it against the file name
// prefix (watcher-*, pusher-*).
type Kind string

// The plugin kinds.
const (
	KindWatcher Kind = wire.KindWatcher
	KindPusher  Kind = wire.KindPusher
)

// Handshake returns the go-plugin handshake shared by hosts and plugins.
func Handshake() plugin.HandshakeConfig { return wire.Handshake() }

// Plugins returns the plugin sets a host passes to go-plugin as
// ClientConfig.VersionedPlugins. Dispensing "watcher" yields a
// WatcherClient, "pusher" a PusherClient.
func Plugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {
			string(KindWatcher): &dispenser{newClient: func(info infoClient, conn *grpc.ClientConn, broker *plugin.GRPCBroker) any {
				return &watcherClient{infoClient: info, watcher: pluginpb.NewWatcherClient(conn), broker: broker}
			}},
			string(KindPusher): &dispenser{newClient: func(info infoClient, conn *grpc.ClientConn, broker *plugin.GRPCBroker) any {
				return &pusherClient{infoClient: info, pusher: pluginpb.NewPusherClient(conn), broker: broker}
			}},
		},
	}
}

// GRPCDialOptions returns the dial options a host passes to go-plugin as
// ClientConfig.GRPCDialOptions (message limits raised to MaxMessageBytes).
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
	)}
}

// ValidInstanceName reports whether name may follow watcher- or pusher- in
// a plugin's file name: [a-z0-9][a-z0-9-]*.
func ValidInstanceName(name string) bool { return wire.ValidInstanceName(name) }

// EnvPrefix returns the prefix of an instance's configuration variables:
// "riffyn" -> "PLUGIN_RIFFYN_", "my-files" -> "PLUGIN_MY_FILES_".
func EnvPrefix(instance string) string { return wire.EnvPrefix(instance) }

// Manifest is what a plugin reports about itself when the host calls
// Info: the plugin's sdk.Info, with its kind, the SDK it was built with
// and its configuration struct described key by key. The JSON names are
// those of the services' operator API (GET /plugins, "info").
type Manifest struct {
	// Name is the implementation's name (sdk.Info.Name).
	Name string `json:"name"`
	// Kind is the plugin's kind.
	Kind Kind `json:"kind"`
	// Version is the plugin's own version (sdk.Info.Version).
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

// ConfigKey describes one configuration variable of a plugin.
type ConfigKey struct {
	// Name is the variable without its PLUGIN_<NAME>_ prefix, e.g. API_KEY.
	Name     string `json:"name"`
	Required bool   `json:"required"`
	// Secret keys have their values masked wherever the host shows them.
	Secret  bool   `json:"secret"`
	Default string `json:"default,omitempty"`
	Help    string `json:"help,omitempty"`
}

// CheckConfig returns an error matching sdk.ErrConfig naming every
// required key of m without a default that environ (KEY=value entries)
// leaves unset or empty for instance, in the words the SDK's loader uses:
// "PLUGIN_X_DIR is required but not set". Nil when all are set.
func (m Manifest) CheckConfig(instance string, environ []string) error {
	prefix := EnvPrefix(instance)
	var missing []string
	for _, k := range m.Config {
		if !k.Required || k.Default != "" {
			continue
		}
		if !slices.ContainsFunc(environ, func(kv string) bool {
			key, val, _ := strings.Cut(kv, "=")
			return key == prefix+k.Name && val != ""
		}) {
			missing = append(missing, prefix+k.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return wire.NotSet(missing...)
}

// Client is the host's handle on a plugin of any kind.
type Client interface {
	// Info asks the plugin to describe itself.
	Info(ctx context.Context) (Manifest, error)
}

// Emission is a trigger a watcher emitted, as the host receives it.
type Emission struct {
	Trigger sdk.Trigger
	// Key is the idempotency key, "" when none.
	Key string
}

// TriggerSink receives a watcher's emissions on the host side.
type TriggerSink interface {
	// Accept stores the emitted trigger durably and returns its receipt.
	// ctx carries the trace context of the watcher's Emit call, if any,
	// as a remote span context.
	// Errors matching sdk.ErrInvalid are reported to the plugin as
	// rejections of that trigger; other errors as sdk.ErrUnavailable.
	Accept(ctx context.Context, e Emission) (sdk.Receipt, error)
}

// WatcherClient is the host's handle on a watcher plugin.
type WatcherClient interface {
	Client
	// Run runs the watcher until ctx is done (it then returns nil) or the
	// watcher stops. Triggers go to sink; the watcher's State calls are
	// served by state. A dead plugin process yields ErrPluginExited; a
	// configuration the plugin refused matches sdk.ErrConfig.
	Run(ctx context.Context, sink TriggerSink, state sdk.State) error
}

// PusherClient is the host's handle on a pusher plugin.
type PusherClient interface {
	Client
	// Start configures the pusher and gives it its State; call it once
	// before Push. A configuration the plugin refused matches
	// sdk.ErrConfig.
	Start(ctx context.Context, state sdk.State) error
	// Push delivers rows, encoded with EncodeRows (req.Rows is ignored).
	// The deadline of ctx reaches the plugin as its Push's deadline, and
	// the span context of ctx as its trace context (sdk.TraceContext).
	// Errors match sdk.ErrDelivered (the rows were delivered; the message
	// is the plugin's note), sdk.ErrSkipped, sdk.ErrPermanent or
	// ErrPluginExited; any other error is retryable.
	Push(ctx context.Context, req sdk.PushRequest, rows EncodedRows) error
}
