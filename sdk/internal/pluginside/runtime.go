package pluginside

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/routinglayer/routing/sdk/internal/wire"
)

// NewRuntime reads the instance name, environment and log level the host
// gave a plugin of kind (wire.KindWatcher, wire.KindPusher); logs go to
// stderr.
func NewRuntime(kind string) Runtime {
	instance := os.Getenv(wire.InstanceEnv)
	if instance == "" {
		instance = strings.TrimPrefix(filepath.Base(os.Args[0]), kind+"-")
	}
	return Runtime{
		Instance: instance,
		Environ:  environMap(os.Environ()),
		Logger:   NewLogger(os.Stderr, ParseLevel(os.Getenv(wire.LogLevelEnv))),
	}
}

// LevelTrace is hclog's trace level in slog's scale, below slog.LevelDebug.
const LevelTrace = slog.LevelDebug - 4

// ParseLevel reads a level as the host sets it (trace, debug, info, warn,
// error); anything else is info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// NewLogger returns the logger plugins use: one JSON object per line in
// hclog's shape (@timestamp, @level, @message, then the attributes), which
// go-plugin hosts parse and re-log under the plugin's name at its level.
// Durations are written as text ("2s"), not as integer nanoseconds, so
// they read the same after the host re-logs them.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: hclogShape,
	}))
}

// hclogShape renames slog's built-in keys to hclog's and writes durations
// as text.
func hclogShape(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.TimeKey:
			return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
		case slog.LevelKey:
			return slog.String("@level", levelName(a.Value.Any()))
		case slog.MessageKey:
			return slog.Attr{Key: "@message", Value: a.Value}
		}
	}
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func levelName(v any) string {
	l, _ := v.(slog.Level)
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
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

// ExitWithParent ends the plugin process when its host dies, even by
// SIGKILL: the process is then re-parented and its parent pid changes.
// It returns when ctx is done.
func ExitWithParent(ctx context.Context, ppid int, every time.Duration) {
	if ppid <= 1 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				os.Stderr.WriteString("host process is gone; exiting\n")
				os.Exit(3)
			}
		}
	}
}

// NewGRPCServer is the plugin's gRPC server with raised message limits.
func NewGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(wire.MaxMessageBytes),
		grpc.MaxSendMsgSize(wire.MaxMessageBytes),
	)...)
}
