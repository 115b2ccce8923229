// Command probe is a plugin for the plugin manager's tests. It serves as a
// watcher or a pusher according to its file name, reports the environment
// it was given in the trigger it emits, and crashes on request.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
	"github.com/routinglayer/routing/sdk/serve"
)

// version is set with -ldflags "-X main.version=..." to build new versions.
var version = "1.0.0"

type config struct {
	Token         string `env:"TOKEN" secret:"true" help:"a secret the host must mask"`
	CrashIfExists string `env:"CRASH_IF_EXISTS" help:"exit at start while this file exists"`
	ConfigError   string `env:"CONFIG_ERROR" help:"when set, Run refuses the configuration with this text"`
}

type probe struct{ cfg config }

func (p *probe) Info() sdk.Info {
	return sdk.Info{Name: "probe", Version: version, Description: "test plugin", Config: &p.cfg}
}

// Run counts its runs in State, emits one trigger listing the
// environment and the count, then waits.
func (p *probe) Run(ctx context.Context, host sdk.WatcherHost) error {
	if p.cfg.ConfigError != "" {
		return fmt.Errorf("%w: %s", sdk.ErrConfig, p.cfg.ConfigError)
	}
	env := os.Environ()
	sort.Strings(env)
	runs := 1
	if v, err := host.State().Get(ctx, "runs"); err == nil {
		n, _ := strconv.Atoi(string(v))
		runs = n + 1
	}
	if err := host.State().Put(ctx, "runs", []byte(strconv.Itoa(runs))); err != nil {
		return err
	}
	spec, _ := json.Marshal(map[string]any{"environ": env, "pid": os.Getpid(), "runs": runs})
	if _, err := host.Emit(ctx, sdk.Trigger{APIVersion: "Probe/v1", Protocol: "Report", Spec: spec}, ""); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (p *probe) Start(context.Context, sdk.Host) error { return nil }

func (p *probe) Push(context.Context, sdk.PushRequest) error { return nil }

func main() {
	// Decide before serving: a crash at start must look like one.
	name := filepath.Base(os.Args[0])
	instance := name[strings.Index(name, "-")+1:]
	if f := os.Getenv(pluginhost.EnvPrefix(instance) + "CRASH_IF_EXISTS"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "probe: crashing at start as asked")
			os.Exit(1)
		}
	}
	if strings.HasPrefix(name, "pusher-") {
		serve.Pusher(&probe{})
		return
	}
	serve.Watcher(&probe{})
}
