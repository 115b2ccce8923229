// Package pluginmgr runs a service's plugins: it discovers the executables
// of one kind (watcher-*, pusher-*) in the plugins directory, launches
// each as its own process through go-plugin with an environment built
// from scratch, supervises it (restart with backoff, give up after a run
// of fast crashes) and serves the operator API that lists, restarts, stops
// and starts them one at a time.
package pluginmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/defaults"
	"github.com/routinglayer/routing/host/internal/retry"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// ErrUnknownPlugin is returned for a name no plugin has.
var ErrUnknownPlugin = errors.New("no such plugin")

// Config configures a Manager.
type Config struct {
	// Dir is the plugins directory.
	Dir string
	// Kind is the kind of plugins this service runs.
	Kind pluginhost.Kind
	// Environ is the host environment plugins' variables are taken from;
	// default os.Environ().
	Environ []string
	// RunDir, when set, holds pid files so that a host restarted after a
	// crash kills plugin processes that outlived it.
	RunDir string
	// StartTimeout bounds a plugin's start and its Info call; default 10s.
	// (The defaults of this and the fields below are DefaultConfig's.)
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a restart after a
	// crash; defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// HealthyAfter is how long a plugin must run for its crash count to
	// reset; default 30s.
	HealthyAfter time.Duration
	// MaxFastCrashes is how many crashes in a row (each before
	// HealthyAfter) make a plugin failed; default 5.
	MaxFastCrashes int
	// HealthInterval is how often a running plugin's health service is
	// asked, HealthTimeout how long it has to answer before the process
	// is killed and restarted; defaults 10s and 5s.
	HealthInterval, HealthTimeout time.Duration
	// StderrLines is how many of a plugin's last stderr lines are kept for
	// the status API; default 50.
	StderrLines int
	// RescanInterval is how often the directory is rescanned besides
	// change notifications; default 10s.
	RescanInterval time.Duration
	// Checksums, when set, names a file in sha256sum's format: a plugin
	// file whose SHA-256 is not listed there is refused, and the hash is
	// checked again at every launch.
	Checksums string
	// Settle is how long a file must stay unchanged before it is started
	// or replaces a running version (a copy may still be under way);
	// default 1s.
	Settle time.Duration
	// Leases, when set, shares the plugins with other instances of the
	// service using the same database: each plugin runs in the one
	// instance holding its lease, the others are standby, and an
	// operator's stop, start or restart acts wherever the plugin runs.
	// Nil: this instance runs every plugin it finds.
	Leases Leases
	// LeaseTTL is how long a lease lasts unless renewed; the holder
	// renews it every TTL/3, the others ask for it every TTL/5. Default
	// DefaultLeaseTTL (10s).
	LeaseTTL time.Duration
}

// DefaultConfig holds the Manager's defaults: New gives each unset field
// of a Config its value here (see defaults.Fill), MaxBackoff at least
// MinBackoff, and Environ os.Environ(); the services' configuration takes
// its plugin defaults from it.
func DefaultConfig() Config {
	return Config{
		StartTimeout:   10 * time.Second,
		MinBackoff:     500 * time.Millisecond,
		MaxBackoff:     30 * time.Second,
		HealthyAfter:   30 * time.Second,
		MaxFastCrashes: 5,
		HealthInterval: 10 * time.Second,
		HealthTimeout:  5 * time.Second,
		StderrLines:    50,
		RescanInterval: 10 * time.Second,
		Settle:         time.Second,
		LeaseTTL:       DefaultLeaseTTL,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	defaults.Fill(c, d)
	if c.Environ == nil {
		c.Environ = os.Environ()
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
}

// restartBackoff is the delay before a restart after a crash: exponential
// from MinBackoff, capped at MaxBackoff, with up to 20% jitter so many
// plugins do not restart in step.
func (c *Config) restartBackoff() retry.Policy {
	return retry.Policy{Min: c.MinBackoff, Max: c.MaxBackoff, Jitter: 0.2}
}

// Manager supervises the plugins of one kind.
type Manager struct {
	cfg    Config
	attach AttachFunc
	log    hclog.Logger
	sums   *checksums // nil without a checksums file

	mu      sync.Mutex
	ctx     context.Context // set by Run; supervisors live under it
	sups    map[string]*supervisor
	skipped []Skipped
	wg      sync.WaitGroup
}

// New returns a Manager that calls attach for every running plugin.
func New(cfg Config, attach AttachFunc, log hclog.Logger) *Manager {
	cfg.setDefaults()
	m := &Manager{
		cfg:    cfg,
		attach: attach,
		log:    log.Named("plugins"),
		sups:   make(map[string]*supervisor),
	}
	if cfg.Checksums != "" {
		m.sums = &checksums{path: cfg.Checksums}
	}
	return m
}

// Run discovers and starts the plugins, then supervises them until ctx is
// done, rescanning the directory when it changes (fsnotify) and every
// RescanInterval; it returns once every plugin process is gone.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	if m.cfg.RunDir != "" {
		if err := os.MkdirAll(m.cfg.RunDir, 0o750); err != nil {
			return fmt.Errorf("plugin run dir: %w", err)
		}
	}
	m.watch(ctx)
	m.wg.Wait()
	return nil
}

// watch rescans at start, on change notifications (after a short quiet
// period, so a burst of events gives one scan), every RescanInterval, and
// again once files still being written have settled.
func (m *Manager) watch(ctx context.Context) {
	var events chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err != nil {
		m.log.Warn("no change notifications; rescanning periodically", "error", err)
	} else {
		defer w.Close()
		if err := w.Add(m.cfg.Dir); err != nil {
			m.log.Warn("no change notifications for the plugins directory; rescanning periodically", "dir", m.cfg.Dir, "error", err)
		} else {
			events = w.Events
		}
	}
	ticker := time.NewTicker(m.cfg.RescanInterval)
	defer ticker.Stop()
	soon := time.NewTimer(0) // the first scan, at once
	defer soon.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			soon.Reset(200 * time.Millisecond)
			continue
		case <-ticker.C:
		case <-soon.C:
		}
		pending, err := m.rescan()
		switch {
		case err != nil && err.Error() != lastErr:
			m.log.Error("plugins directory not readable", "dir", m.cfg.Dir, "error", err)
		case err == nil && lastErr != "":
			m.log.Info("plugins directory readable again", "dir", m.cfg.Dir)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		if pending {
			soon.Reset(m.cfg.Settle)
		}
	}
}

// Rescan compares the plugins directory with the running plugins: a new
// executable is started, a removed one stopped, a changed one restarted on
// its new version. A file modified within Settle is left for a later scan.
func (m *Manager) Rescan() error {
	_, err := m.rescan()
	return err
}

// rescan is Rescan; pending reports files left until they settle.
func (m *Manager) rescan() (pending bool, err error) {
	found, skipped, err := Discover(m.cfg.Dir, m.cfg.Kind)
	if err != nil {
		return false, err
	}
	if m.sums != nil {
		var refused []Skipped
		found, refused = m.sums.verify(found)
		skipped = append(skipped, refused...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return false, errors.New("plugin manager is not running")
	}
	for _, sk := range skipped {
		if !slices.Contains(m.skipped, sk) {
			m.log.Warn("skipping plugin file", "file", sk.File, "reason", sk.Reason)
		}
	}
	m.skipped = skipped
	names := make(map[string]bool, len(found))
	for _, c := range found {
		names[c.Name] = true
		sup, ok := m.sups[c.Name]
		if time.Since(c.ModTime) < m.cfg.Settle && (!ok || !sup.candidateSameAs(c)) {
			pending = true // still being written, perhaps: look again later
			continue
		}
		switch {
		case !ok:
			m.startLocked(c)
		case !sup.candidateSameAs(c):
			m.log.Info("plugin file changed; restarting it on the new version", "plugin", c.Name)
			sup.set(func(s *supervisor) { s.candidate = c })
			go sup.send(m.ctx, cmdRestart)
		}
	}
	for name, sup := range m.sups {
		if !names[name] {
			m.log.Info("plugin file removed; stopping it", "plugin", name)
			delete(m.sups, name)
			go sup.send(m.ctx, cmdRemove)
		}
	}
	return pending, nil
}

func (m *Manager) startLocked(c Candidate) {
	sup := &supervisor{
		m:         m,
		name:      c.Name,
		log:       m.log.With("plugin", c.Name),
		stderr:    newLineRing(m.cfg.StderrLines),
		cmds:      make(chan command),
		poke:      make(chan struct{}, 1),
		candidate: c,
		state:     StateStarting,
	}
	if m.cfg.RunDir != "" {
		sup.pids = pidFile{path: filepath.Join(m.cfg.RunDir, string(m.cfg.Kind)+"-"+c.Name+".pid")}
	}
	m.sups[c.Name] = sup
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		sup.loop(m.ctx)
	}()
}

func (s *supervisor) candidateSameAs(c Candidate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.candidate.sameVersion(c)
}

// launchSpec builds the launch of one process of s.
func (m *Manager) launchSpec(s *supervisor, c Candidate) launchSpec {
	return launchSpec{
		name:    s.name,
		path:    c.Path,
		kind:    m.cfg.Kind,
		env:     pluginEnv(s.name, instanceNames(m.cfg.Dir), m.cfg.Environ, m.log.GetLevel()),
		timeout: m.cfg.StartTimeout,
		logger:  m.log.ResetNamed("plugin"),
		stderr:  s.stderr,
		sum:     c.sum,
	}
}

// configValues shows a plugin's declared configuration with the values it
// receives, secret ones masked.
func (m *Manager) configValues(name string, info *pluginhost.Manifest) []ConfigValue {
	out := []ConfigValue{}
	if info == nil {
		return out
	}
	prefix := pluginhost.EnvPrefix(name)
	for _, k := range info.Config {
		v := ConfigValue{ConfigKey: k, Variable: prefix + k.Name}
		for _, kv := range m.cfg.Environ {
			if key, val, _ := strings.Cut(kv, "="); key == v.Variable {
				v.Set, v.Value = true, val
			}
		}
		if v.Set && k.Secret {
			v.Value = "********"
		}
		out = append(out, v)
	}
	return out
}

// List returns the status of every plugin, sorted by name.
func (m *Manager) List() []Status {
	m.mu.Lock()
	sups := make([]*supervisor, 0, len(m.sups))
	for _, s := range m.sups {
		sups = append(sups, s)
	}
	m.mu.Unlock()
	out := make([]Status, len(sups))
	for i, s := range sups {
		out[i] = s.status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Skipped returns the files the last scan skipped, and why.
func (m *Manager) Skipped() []Skipped {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Skipped{}, m.skipped...)
}

// Get returns the status of one plugin.
func (m *Manager) Get(name string) (Status, error) {
	s, err := m.supervisor(name)
	if err != nil {
		return Status{}, err
	}
	return s.status(), nil
}

// Restart restarts one plugin now, from any state, resetting its crash
// count. With leases it ends an operator's stop and the lease's holder
// restarts its process, whichever instance is asked.
func (m *Manager) Restart(ctx context.Context, name string) error {
	if m.cfg.Leases != nil {
		return m.leaseCommand(ctx, name, m.cfg.Leases.Restart)
	}
	return m.command(ctx, name, cmdRestart)
}

// Stop stops one plugin until Start or Restart. With leases it is
// stopped in every instance: the holder stops its process and releases
// the lease, and no instance takes it until it is started again.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if m.cfg.Leases != nil {
		return m.leaseCommand(ctx, name, m.cfg.Leases.Stop)
	}
	return m.command(ctx, name, cmdStop)
}

// Start starts a stopped or failed plugin; a running one is left alone.
// With leases it ends an operator's stop (some instance acquires the
// lease and runs the plugin) and a holder whose plugin failed starts it.
func (m *Manager) Start(ctx context.Context, name string) error {
	if m.cfg.Leases != nil {
		return m.leaseCommand(ctx, name, m.cfg.Leases.Start)
	}
	return m.command(ctx, name, cmdStart)
}

func (m *Manager) command(ctx context.Context, name string, c command) error {
	s, err := m.supervisor(name)
	if err != nil {
		return err
	}
	select {
	case s.cmds <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) supervisor(name string) (*supervisor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sups[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, name)
	}
	return s, nil
}
