// Package wire holds what both ends of the plugin protocol share: the
// handshake, the limits, the environment variables through which a host
// configures a plugin, the conversions between the contract's Go types and
// the generated protobuf messages, and the error codes.
package wire

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SDKVersion is the version of the Go SDK, reported to the host in Info.
const SDKVersion = "1.1.0"

// Language is what the Go SDK reports as its plugins' language.
const Language = "go"

// ProtocolVersion is the plugin protocol version this SDK speaks.
const ProtocolVersion = 1

// MaxMessageBytes bounds one gRPC message between host and plugin (64 MiB).
const MaxMessageBytes = 64 << 20

// InstanceEnv is the variable through which the host tells a plugin its
// instance name (the file name without its kind prefix).
const InstanceEnv = "ROUTING_PLUGIN_INSTANCE"

// LogLevelEnv is the variable through which the host sets a plugin's log
// level (trace, debug, info, warn, error).
const LogLevelEnv = "ROUTING_PLUGIN_LOG_LEVEL"

// The plugin kinds, as go-plugin dispenses them and Info reports them.
const (
	KindWatcher = "watcher"
	KindPusher  = "pusher"
)

// Handshake returns the go-plugin handshake shared by hosts and plugins.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "ROUTING_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "d2c6a4f0-routing-layer-plugin",
	}
}

// ErrPluginExited is what the host sees when a plugin process died or its
// connection broke, whatever the gRPC status was.
var ErrPluginExited = errors.New("plugin exited")

var instanceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ValidInstanceName reports whether name may follow watcher- or pusher- in
// a plugin's file name.
func ValidInstanceName(name string) bool { return instanceNameRE.MatchString(name) }

// EnvPrefix returns the prefix of an instance's configuration variables:
// "riffyn" -> "PLUGIN_RIFFYN_", "my-files" -> "PLUGIN_MY_FILES_".
func EnvPrefix(instance string) string {
	return "PLUGIN_" + strings.ToUpper(strings.ReplaceAll(instance, "-", "_")) + "_"
}

// TransportError maps a gRPC transport failure to the contract's errors: a
// broken connection is ErrPluginExited, a deadline stays a deadline.
func TransportError(op string, err error) error {
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("%s: %w", op, context.Canceled)
	case codes.Unavailable, codes.Internal, codes.Unknown:
		return fmt.Errorf("%s: %w: %v", op, ErrPluginExited, status.Convert(err).Message())
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}
