package pluginmgr

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"

	"github.com/routinglayer/routing/sdk/pluginhost"
)

// allowedHostEnv are the host variables every plugin receives, besides its
// own PLUGIN_<NAME>_* ones.
var allowedHostEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// pluginEnv builds a plugin's environment from scratch: the allow-list,
// the instance's own PLUGIN_<NAME>_* variables and the variables through
// which the SDK learns its instance name and log level. A variable that
// belongs to another instance with a longer matching prefix (PLUGIN_A_B_X
// is b's of "a-b", not "a"'s) is withheld too.
func pluginEnv(name string, others []string, hostEnv []string, level hclog.Level) []string {
	prefix := pluginhost.EnvPrefix(name)
	var longer []string
	for _, o := range others {
		if p := pluginhost.EnvPrefix(o); o != name && strings.HasPrefix(p, prefix) {
			longer = append(longer, p)
		}
	}
	env := []string{
		pluginhost.InstanceEnv + "=" + name,
		pluginhost.LogLevelEnv + "=" + strings.ToLower(level.String()),
	}
	for _, kv := range hostEnv {
		key, _, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(allowedHostEnv, key):
		case strings.HasPrefix(key, prefix) && !slices.ContainsFunc(longer, func(p string) bool { return strings.HasPrefix(key, p) }):
		default:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// process is one launched plugin process.
type process struct {
	client *plugin.Client
	plugin pluginhost.Client
	info   pluginhost.Manifest
	pid    int
	// health asks the plugin's gRPC health service whether it serves.
	health grpc_health_v1.HealthClient
	// exited is closed when the process is gone.
	exited chan struct{}
}

// launchSpec is everything needed to start one plugin process.
type launchSpec struct {
	name    string
	path    string
	kind    pluginhost.Kind
	env     []string
	timeout time.Duration
	logger  hclog.Logger
	stderr  *lineRing
	// sum, when set, is the SHA-256 go-plugin checks before each launch.
	sum []byte
}

// launch starts the plugin, dispenses its client and checks its Info.
// On error the process is gone.
func launch(ctx context.Context, s launchSpec) (*process, error) {
	cmd := exec.Command(s.path)
	cmd.Args = []string{filepath.Base(s.path)}
	cmd.Env = s.env
	cmd.Dir = filepath.Dir(s.path)
	// Its own process group: a Ctrl-C meant for the host does not reach
	// the plugin, which the host stops in order. Pdeathsig kills it if the
	// host dies; the SDK also watches its parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginhost.Handshake(),
		VersionedPlugins: pluginhost.Plugins(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     s.timeout,
		SecureConfig:     secureConfig(s.sum),
		Stderr:           io.MultiWriter(s.stderr, newRelogger(s.logger.Named(filepath.Base(s.path)))),
		Logger:           quietStderr(s.logger, filepath.Base(s.path)),
		GRPCDialOptions:  pluginhost.GRPCDialOptions(),
	})
	p := &process{client: client, exited: make(chan struct{})}
	fail := func(err error) (*process, error) {
		client.Kill()
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(fmt.Errorf("start: %w", handshakeError(err)))
	}
	p.pid = cmd.Process.Pid
	grpcClient, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return fail(fmt.Errorf("start: unexpected protocol client %T", rpc))
	}
	p.health = grpc_health_v1.NewHealthClient(grpcClient.Conn)
	raw, err := rpc.Dispense(string(s.kind))
	if err != nil {
		return fail(fmt.Errorf("dispense %s: %w", s.kind, err))
	}
	pc, ok := raw.(pluginhost.Client)
	if !ok {
		return fail(fmt.Errorf("dispense %s: unexpected client %T", s.kind, raw))
	}
	p.plugin = pc
	infoCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p.info, err = pc.Info(infoCtx)
	if err != nil {
		return fail(fmt.Errorf("info: %w", err))
	}
	if p.info.Kind != s.kind {
		return fail(fmt.Errorf("%w: file name says %s but the plugin is a %s", errKindMismatch, s.kind, p.info.Kind))
	}
	if err := p.info.CheckConfig(s.name, s.env); err != nil {
		return fail(err)
	}
	go p.watchExit()
	return p, nil
}

var errKindMismatch = errors.New("plugin kind does not match its file name")

// secureConfig makes go-plugin hash the binary at launch, so a file
// swapped after the scan is refused too.
func secureConfig(sum []byte) *plugin.SecureConfig {
	if sum == nil {
		return nil
	}
	return &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
}

// watchExit closes exited when the process is gone.
func (p *process) watchExit() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if p.client.Exited() {
			close(p.exited)
			return
		}
	}
}

// checkHealth asks the process's health service, within timeout.
func (p *process) checkHealth(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := p.health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("health check: no answer within %s", timeout)
	case err != nil:
		return fmt.Errorf("health check: %w", err)
	case resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING:
		return fmt.Errorf("health check: status %s", resp.GetStatus())
	}
	return nil
}

// kill stops the process (gracefully, then by force) and its process
// group, and waits until it is gone.
func (p *process) kill() {
	p.client.Kill()
	// Anything the plugin started in its group goes with it.
	p.signal(syscall.SIGKILL)
	<-p.exited
}

// signal sends sig to the process's group.
func (p *process) signal(sig syscall.Signal) {
	if p.pid > 0 {
		_ = syscall.Kill(-p.pid, sig)
	}
}

// lineRing keeps the last lines a plugin wrote to stderr. go-plugin
// writes each line, then its newline, separately.
type lineRing struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial strings.Builder
}

func newLineRing(max int) *lineRing { return &lineRing{max: max} }

func (r *lineRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			r.partial.WriteByte(b)
			continue
		}
		r.lines = append(r.lines, r.partial.String())
		r.partial.Reset()
		if len(r.lines) > r.max {
			r.lines = slices.Delete(r.lines, 0, len(r.lines)-r.max)
		}
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first.
func (r *lineRing) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// pidFile records a plugin's pid and path so that a host restarted after
// a crash can reap a plugin process that outlived it.
type pidFile struct{ path string }

func (f pidFile) write(pid int, exe string) {
	if f.path == "" {
		return
	}
	_ = os.WriteFile(f.path, []byte(strconv.Itoa(pid)+"\n"+exe+"\n"), 0o600)
}

func (f pidFile) remove() {
	if f.path != "" {
		_ = os.Remove(f.path)
	}
}

// reap kills the process recorded in the file if it is still running the
// same executable, and removes the file. It reports the pid it killed.
func (f pidFile) reap() int {
	if f.path == "" {
		return 0
	}
	defer f.remove()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return 0
	}
	pidText, exe, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 1 {
		return 0
	}
	// Only a process still running the recorded executable is ours: the
	// pid may have been reused.
	if !runs(pid, exe) {
		return 0
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return pid
}

// runs reports whether process pid runs the plugin file exe: as its
// executable, or, for a script (a Python plugin's zipapp, a shell
// script), as the file its interpreter was started with (/proc/<pid>/exe
// is then the interpreter, and the kernel passes the script's path as the
// interpreter's first argument).
func runs(pid int, exe string) bool {
	running, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	if running == exe || strings.TrimSuffix(running, " (deleted)") == exe {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	return len(args) >= 2 && realPath(args[1]) == exe
}

// SetBufferPool makes gRPC marshal the messages to plugins into buffers
// of a pool with a tier at every power of two from 256 bytes to 64 MiB.
// gRPC's default pool jumps from 32 KiB to 1 MiB, so each push of a few
// hundred kilobytes (a pusher's batch of rows) held a 1 MiB buffer. It
// replaces gRPC's default pool for the whole process (gRPC marshals into
// the default pool whatever the connection's options), so a service sets
// it once at start, before any plugin runs.
func SetBufferPool() error {
	exps := make([]uint8, 0, 19)
	for e := uint8(8); e <= 26; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		return fmt.Errorf("gRPC buffer pool: %w", err)
	}
	experimental.SetDefaultBufferPool(p)
	return nil
}
