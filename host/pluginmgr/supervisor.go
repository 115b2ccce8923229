package pluginmgr

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/poll"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// State is where a plugin is in its life cycle.
type State string

// The plugin states.
const (
	// StateStarting: the process is being launched.
	StateStarting State = "starting"
	// StateRunning: the process is up and attached to the service.
	StateRunning State = "running"
	// StateBackoff: the process died; it is restarted after a delay.
	StateBackoff State = "backoff"
	// StateFailed: it crashed too often in a row; only an operator's
	// restart (or a new version of the file) starts it again.
	StateFailed State = "failed"
	// StateStopped: stopped by an operator, or being removed.
	StateStopped State = "stopped"
	// StateStandby: with leases, another instance holds the plugin's
	// lease and runs it (Status.Holder names it); this one takes over
	// when that lease is released or expires.
	StateStandby State = "standby"
)

// Status is a snapshot of one plugin, as the operator API shows it.
type Status struct {
	Name  string          `json:"name"`
	Kind  pluginhost.Kind `json:"kind"`
	Path  string          `json:"path"`
	State State           `json:"state"`
	PID   int             `json:"pid,omitempty"`
	// Version is the plugin's own version (Info.Version), once it ran.
	Version  string               `json:"version,omitempty"`
	Info     *pluginhost.Manifest `json:"info,omitempty"`
	Restarts int                  `json:"restarts"`
	// LastError is why the plugin is not running (backoff, failed,
	// standby); while it runs it is empty, and PreviousError says why
	// the process before this one ended.
	LastError     string        `json:"lastError,omitempty"`
	LastErrorAt   *time.Time    `json:"lastErrorAt,omitempty"`
	PreviousError string        `json:"previousError,omitempty"`
	StartedAt     *time.Time    `json:"startedAt,omitempty"`
	NextStartAt   *time.Time    `json:"nextStartAt,omitempty"`
	Config        []ConfigValue `json:"config"`
	Stderr        []string      `json:"stderr"`
	// Holder is, with leases, the instance id holding the plugin's lease:
	// this instance while it runs the plugin, another one in standby;
	// empty when nobody holds it (stopped) or without leases.
	Holder string `json:"holder,omitempty"`
}

// ConfigValue is one configuration key of a plugin with its value as the
// plugin receives it; secret values are masked.
type ConfigValue struct {
	pluginhost.ConfigKey
	Variable string `json:"variable"`
	Set      bool   `json:"set"`
	Value    string `json:"value,omitempty"`
}

// Plugin is a running plugin as the service's Attach function sees it.
type Plugin struct {
	// Name is the instance name.
	Name string
	// Info is what the plugin reported about itself.
	Info pluginhost.Manifest
	// Client is a pluginhost.WatcherClient or pluginhost.PusherClient, by kind.
	Client pluginhost.Client
}

// AttachFunc puts a running plugin to work. It is called once per process
// and should return when ctx is done (the process exited or is being
// stopped) or when the plugin failed; a non-nil error other than ctx's is
// recorded as the plugin's last error and counts as a crash.
type AttachFunc func(ctx context.Context, p *Plugin) error

type command int

const (
	cmdNone command = iota
	cmdRestart
	cmdStop
	cmdStart
	cmdRemove
	cmdRetry // the backoff delay passed
)

// supervisor owns one plugin: it launches the process, attaches it,
// restarts it after a crash with backoff, and obeys operator commands.
type supervisor struct {
	m      *Manager
	name   string
	log    hclog.Logger
	stderr *lineRing
	pids   pidFile
	cmds   chan command
	// poke makes a supervisor with leases look at its lease at once.
	poke chan struct{}

	mu          sync.Mutex
	candidate   Candidate
	state       State
	pid         int
	info        *pluginhost.Manifest
	restarts    int
	holder      string
	lastErr     string
	lastErrAt   time.Time
	startedAt   time.Time
	nextStartAt time.Time
}

func (s *supervisor) set(f func(s *supervisor)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *supervisor) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name:     s.name,
		Kind:     s.m.cfg.Kind,
		Path:     s.candidate.Path,
		State:    s.state,
		PID:      s.pid,
		Info:     s.info,
		Restarts: s.restarts,
		Holder:   s.holder,
		Stderr:   s.stderr.Lines(),
	}
	if st.Stderr == nil {
		st.Stderr = []string{}
	}
	st.Config = s.m.configValues(s.name, s.info)
	if s.info != nil {
		st.Version = s.info.Version
	}
	switch {
	case s.lastErr == "":
	case s.state == StateRunning && !s.lastErrAt.After(s.startedAt):
		st.PreviousError = s.lastErr
	default:
		st.LastError, st.LastErrorAt = s.lastErr, timePtr(s.lastErrAt)
	}
	if s.state == StateRunning {
		st.StartedAt = timePtr(s.startedAt)
	}
	if s.state == StateBackoff {
		st.NextStartAt = timePtr(s.nextStartAt)
	}
	return st
}

func timePtr(t time.Time) *time.Time { return &t }

func (s *supervisor) recordError(err error) {
	s.set(func(s *supervisor) { s.lastErr, s.lastErrAt = err.Error(), time.Now().UTC() })
	s.log.Error("plugin failed", "error", err)
}

// send delivers a command unless the supervisor has ended.
func (s *supervisor) send(ctx context.Context, c command) {
	select {
	case s.cmds <- c:
	case <-ctx.Done():
	}
}

// loop runs until ctx is done or the plugin is removed.
func (s *supervisor) loop(ctx context.Context) {
	defer s.set(func(s *supervisor) { s.state, s.pid, s.holder = StateStopped, 0, "" })
	if pid := s.pids.reap(); pid != 0 {
		s.log.Warn("killed a process of this plugin left over from a previous run", "pid", pid)
	}
	if s.m.cfg.Leases == nil {
		s.supervise(ctx)
		return
	}
	s.leased(ctx)
}

// supervise runs the plugin, restarting it after crashes and obeying
// commands, until ctx is done or the plugin is removed; it reports
// whether it was removed.
func (s *supervisor) supervise(ctx context.Context) (removed bool) {
	fastCrashes := 0
	for {
		outcome := s.runOnce(ctx)
		if outcome.cmd == cmdRemove {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		next := outcome.cmd
		if next == cmdNone {
			// It crashed.
			if outcome.healthy {
				fastCrashes = 0
			}
			fastCrashes++
			if outcome.config {
				s.log.Error("plugin configuration is invalid; not restarting it until an operator does")
				next = s.wait(ctx, StateFailed, 0)
			} else if fastCrashes >= s.m.cfg.MaxFastCrashes {
				s.log.Error("plugin crashed too often in a row; giving up until restarted", "crashes", fastCrashes)
				next = s.wait(ctx, StateFailed, 0)
			} else {
				next = s.wait(ctx, StateBackoff, s.m.backoff(fastCrashes))
			}
		}
		for next == cmdStop {
			next = s.wait(ctx, StateStopped, 0)
		}
		if next == cmdRemove || ctx.Err() != nil {
			return next == cmdRemove
		}
		if next != cmdRetry {
			// An operator asked for it: start afresh.
			fastCrashes = 0
		}
		s.set(func(s *supervisor) { s.restarts++ })
	}
}

// wait parks the supervisor in state until a command arrives or, with a
// positive delay, the delay passes (cmdRetry); cmdNone when ctx is done.
func (s *supervisor) wait(ctx context.Context, state State, delay time.Duration) command {
	var timer <-chan time.Time
	s.set(func(s *supervisor) {
		s.state, s.pid = state, 0
		if delay > 0 {
			s.nextStartAt = time.Now().Add(delay).UTC()
		}
	})
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		timer = t.C
	}
	select {
	case c := <-s.cmds:
		return c
	case <-timer:
		return cmdRetry
	case <-ctx.Done():
		return cmdNone
	}
}

// runOutcome says how one process ended.
type runOutcome struct {
	// cmd is the command that ended it, cmdNone when it crashed.
	cmd command
	// healthy is true when it ran long enough to reset the crash count.
	healthy bool
	// config is true when it failed on its configuration (sdk.ErrConfig),
	// which a restart cannot fix.
	config bool
}

// runOnce launches the plugin and keeps it attached until it exits, fails,
// or a command or ctx ends it.
func (s *supervisor) runOnce(ctx context.Context) runOutcome {
	s.set(func(s *supervisor) { s.state = StateStarting })
	s.mu.Lock()
	cand := s.candidate
	s.mu.Unlock()

	proc, err := launch(ctx, s.m.launchSpec(s, cand))
	if err != nil {
		if ctx.Err() == nil {
			s.recordError(err)
		}
		return runOutcome{config: errors.Is(err, sdk.ErrConfig)}
	}
	defer s.pids.remove()
	s.pids.write(proc.pid, realPath(cand.Path))
	started := time.Now()
	s.set(func(s *supervisor) {
		s.state, s.pid, s.info, s.startedAt = StateRunning, proc.pid, &proc.info, started.UTC()
	})
	s.log.Info("plugin running", "pid", proc.pid, "implementation", proc.info.Name, "version", proc.info.Version)

	attachCtx, cancel := context.WithCancel(ctx)
	attached := make(chan error, 1)
	go func() {
		attached <- s.m.attach(attachCtx, &Plugin{Name: s.name, Info: proc.info, Client: proc.plugin})
	}()
	unhealthy := make(chan error, 1)
	go s.watchHealth(attachCtx, proc, unhealthy)
	var (
		out       runOutcome
		attachErr error
		healthErr error
		done      bool
	)
wait:
	for {
		select {
		case attachErr = <-attached:
			done = true
		case healthErr = <-unhealthy:
		case <-proc.exited:
		case c := <-s.cmds:
			if c == cmdStart {
				continue // already running
			}
			out.cmd = c
		case <-ctx.Done():
		}
		break wait
	}
	cancel()
	if !done {
		attachErr = <-attached
	}
	exitedByItself := isClosed(proc.exited)
	if healthErr != nil {
		// It answers nothing, so it would not answer a graceful shutdown.
		proc.signal(syscall.SIGKILL)
	}
	proc.kill()

	switch {
	case out.cmd != cmdNone, ctx.Err() != nil:
		s.log.Info("plugin stopped", "pid", proc.pid)
		return out
	case healthErr != nil:
		err = fmt.Errorf("%w; process %d killed", healthErr, proc.pid)
	case exitedByItself:
		err = fmt.Errorf("%w: process %d exited", pluginhost.ErrPluginExited, proc.pid)
		if attachErr != nil && !errors.Is(attachErr, context.Canceled) {
			err = fmt.Errorf("%w (%v)", err, attachErr)
		}
	case attachErr != nil:
		err = attachErr
	default:
		err = errors.New("plugin stopped working without an error")
	}
	s.recordError(err)
	out.healthy = time.Since(started) >= s.m.cfg.HealthyAfter
	out.config = errors.Is(err, sdk.ErrConfig)
	return out
}

// watchHealth checks the process's health every HealthInterval and
// reports the first failure: a process that stops answering (frozen,
// deadlocked, swapped out for good) is killed and restarted rather than
// left "running".
func (s *supervisor) watchHealth(ctx context.Context, proc *process, unhealthy chan<- error) {
	poll.Every(ctx, s.m.cfg.HealthInterval, func() bool {
		if err := proc.checkHealth(ctx, s.m.cfg.HealthTimeout); err != nil && ctx.Err() == nil {
			unhealthy <- err
			return false
		}
		return true
	})
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// backoff returns the delay before restart number n (1-based) of a run of
// crashes (Config.restartBackoff).
func (m *Manager) backoff(n int) time.Duration {
	return m.cfg.restartBackoff().Delay(n - 1)
}
