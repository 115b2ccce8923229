// Package filedrop is a watcher plugin that emits a protocol trigger for
// each JSON file dropped into a directory. Each file is emitted once: the
// plugin records what it emitted in the host's State, so a restart does not
// emit it again, while a file whose content changed is emitted anew.
package filedrop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/routinglayer/routing/sdk"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Config is read from PLUGIN_<NAME>_* variables.
type Config struct {
	Dir          string        `env:"DIR,required" help:"directory watched for *.json trigger files"`
	ScanInterval time.Duration `env:"SCAN_INTERVAL" envDefault:"5s" help:"full rescan period, besides change notifications"`
	DoneDir      string        `env:"DONE_DIR" help:"if set, emitted files are moved here"`
}

// Watcher watches Config.Dir.
type Watcher struct {
	cfg Config
}

var _ sdk.Watcher = (*Watcher)(nil)

// New returns a Watcher; its configuration is loaded by the SDK.
func New() *Watcher { return &Watcher{} }

// Info describes the plugin.
func (w *Watcher) Info() sdk.Info {
	return sdk.Info{
		Name:        "filedrop",
		Version:     Version,
		Description: "emits a protocol trigger for each JSON file dropped into a directory",
		Config:      &w.cfg,
	}
}

// State keys: what was emitted, and what was found invalid, by file name,
// each holding the content hash it applies to.
const (
	emittedPrefix = "emitted/"
	invalidPrefix = "invalid/"
)

// settle is how long after a change notification the directory is scanned,
// so a burst of events yields one scan.
const settle = 200 * time.Millisecond

// Run scans the directory at start, on change notifications and every
// ScanInterval, until ctx is done.
func (w *Watcher) Run(ctx context.Context, host sdk.WatcherHost) error {
	log := host.Logger()
	if info, err := os.Stat(w.cfg.Dir); err != nil || !info.IsDir() {
		return fmt.Errorf("%w: PLUGIN_%s_DIR=%q is not a readable directory", sdk.ErrConfig, envName(host), w.cfg.Dir)
	}
	if w.cfg.DoneDir != "" {
		if err := os.MkdirAll(w.cfg.DoneDir, 0o750); err != nil {
			return fmt.Errorf("done dir: %w", err)
		}
	}
	var events chan fsnotify.Event
	if fw, err := fsnotify.NewWatcher(); err != nil {
		log.Warn("change notifications unavailable; relying on periodic scans", "error", err)
	} else {
		defer fw.Close()
		if err := fw.Add(w.cfg.Dir); err != nil {
			log.Warn("change notifications unavailable; relying on periodic scans", "error", err)
		} else {
			events = fw.Events
		}
	}
	ticker := time.NewTicker(max(w.cfg.ScanInterval, 100*time.Millisecond))
	defer ticker.Stop()
	settleTimer := time.NewTimer(0) // the first scan, at once
	defer settleTimer.Stop()
	log.Info("watching for trigger files", "dir", w.cfg.Dir)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if strings.HasSuffix(ev.Name, ".json") {
				settleTimer.Reset(settle)
			}
		case <-settleTimer.C:
			w.scan(ctx, host)
		case <-ticker.C:
			w.scan(ctx, host)
		}
	}
}

// scan emits every file not emitted yet in its current content.
func (w *Watcher) scan(ctx context.Context, host sdk.WatcherHost) {
	entries, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		host.Logger().Error("cannot read the watched directory", "dir", w.cfg.Dir, "error", err)
		return
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		w.process(ctx, host, name)
	}
}

// process emits one file unless State says it was handled in this content.
func (w *Watcher) process(ctx context.Context, host sdk.WatcherHost, name string) {
	log := host.Logger().With("file", name)
	state := host.State()
	path := filepath.Join(w.cfg.Dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		log.Warn("cannot read trigger file", "error", err)
		return
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:8])
	for _, prefix := range []string{emittedPrefix, invalidPrefix} {
		seen, err := state.Get(ctx, prefix+name)
		switch {
		case err == nil && string(seen) == hash:
			return // handled in this content already
		case err != nil && !errors.Is(err, sdk.ErrNotFound):
			log.Warn("state unavailable; will retry", "error", err)
			return
		}
	}

	t, err := sdk.DecodeTrigger(data)
	if err == nil {
		if t.Metadata == nil {
			spec, _ := json.Marshal(map[string]string{"file": name})
			t.Metadata = &sdk.Metadata{Source: "filedrop", Spec: spec}
		}
		var receipt sdk.Receipt
		receipt, err = host.Emit(ctx, t, "filedrop:"+name+":"+hash)
		if err == nil {
			w.recordEmitted(ctx, host, name, hash, receipt)
			return
		}
	}
	if !errors.Is(err, sdk.ErrInvalid) {
		log.Warn("could not emit trigger; will retry", "error", err)
		return
	}
	log.Warn("invalid trigger file skipped; fix it and it is read again", "error", err)
	if err := state.Put(ctx, invalidPrefix+name, []byte(hash)); err != nil {
		log.Warn("could not record invalid file", "error", err)
	}
}

// recordEmitted notes a stored trigger so it is not emitted again. Should
// the plugin die before this, the next emission of the same key is
// answered as a duplicate: nothing is lost or doubled.
func (w *Watcher) recordEmitted(ctx context.Context, host sdk.WatcherHost, name, hash string, r sdk.Receipt) {
	log := host.Logger().With("file", name, "uuid", r.UUID)
	state := host.State()
	if err := state.Put(ctx, emittedPrefix+name, []byte(hash)); err != nil {
		log.Warn("could not record emitted file", "error", err)
		return
	}
	_ = state.Delete(ctx, invalidPrefix+name)
	log.Info("trigger emitted", "duplicate", r.Duplicate)
	if w.cfg.DoneDir == "" {
		return
	}
	if err := os.Rename(filepath.Join(w.cfg.Dir, name), filepath.Join(w.cfg.DoneDir, name)); err != nil {
		log.Warn("could not move emitted file", "error", err)
		return
	}
	_ = state.Delete(ctx, emittedPrefix+name)
}

// envName is the <NAME> of the instance's PLUGIN_<NAME>_* variables.
func envName(host sdk.Host) string {
	return strings.ToUpper(strings.ReplaceAll(host.InstanceName(), "-", "_"))
}
