package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServeWatcher serves w as a watcher plugin; call it from main. It returns
// only when the host stops the plugin. A plugin must never write to
// stdout: go-plugin uses it for the handshake.
func ServeWatcher(w Watcher) {
	rt := newRuntime(KindWatcher)
	serve(rt, plugin.PluginSet{string(KindWatcher): NewWatcherPlugin(w, rt)})
}

// ServePusher serves p as a pusher plugin; call it from main. It returns
// only when the host stops the plugin.
func ServePusher(p Pusher) {
	rt := newRuntime(KindPusher)
	serve(rt, plugin.PluginSet{string(KindPusher): NewPusherPlugin(p, rt)})
}

func serve(rt Runtime, set plugin.PluginSet) {
	if os.Getenv(Handshake().MagicCookieKey) != Handshake().MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a routing-layer plugin: install it in the service's PLUGINS_DIR, the service runs it.\n", filepath.Base(os.Args[0]))
		os.Exit(1)
	}
	go exitWithParent(os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       newGRPCServer,
		Logger:           rt.Logger.Named("go-plugin"),
	})
}

// newGRPCServer is the plugin's gRPC server with raised message limits.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
	)...)
}

// newRuntime reads the plugin's instance name, environment and log level.
func newRuntime(kind Kind) Runtime {
	instance := os.Getenv(InstanceEnv)
	if instance == "" {
		instance = strings.TrimPrefix(filepath.Base(os.Args[0]), string(kind)+"-")
	}
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return Runtime{
		Instance: instance,
		Environ:  environMap(os.Environ()),
		Logger:   NewLogger(level),
	}
}

// NewLogger returns the logger plugins use: JSON lines on stderr, which
// the host parses and re-logs under the plugin's instance name.
func NewLogger(level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Output:     os.Stderr,
		Level:      level,
		JSONFormat: true,
	})
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// exitWithParent ends the plugin process when its host dies, even by
// SIGKILL: the process is then re-parented and its parent pid changes.
func exitWithParent(ppid int, every time.Duration) {
	if ppid <= 1 {
		return
	}
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			fmt.Fprintln(os.Stderr, "host process is gone; exiting")
			os.Exit(3)
		}
	}
}
