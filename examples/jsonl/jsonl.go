// Package jsonl is a pusher plugin that appends each pushed data row as one
// JSON line to <dir>/<uuid>.jsonl, synced to disk before the push is
// reported delivered.
package jsonl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/routinglayer/routing/sdk"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Config is read from PLUGIN_<NAME>_* variables.
type Config struct {
	Dir string `env:"DIR,required" help:"directory of the <uuid>.jsonl files"`
}

// Pusher writes rows to files.
type Pusher struct {
	cfg Config
}

var _ sdk.Pusher = (*Pusher)(nil)

// New returns a Pusher; its configuration is loaded by the SDK.
func New() *Pusher { return &Pusher{} }

// Info describes the plugin.
func (p *Pusher) Info() sdk.Info {
	return sdk.Info{
		Name:        "jsonl",
		Version:     Version,
		Description: "appends rows to one JSON-lines file per trigger",
		Config:      &p.cfg,
	}
}

// Start creates the directory.
func (p *Pusher) Start(context.Context, sdk.Host) error {
	if err := os.MkdirAll(p.cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", p.cfg.Dir, err)
	}
	return nil
}

// Push appends one line per row, {"uuid":...,"index":...,"data":{...}},
// with the data's keys in the order they were sent and its values exactly
// as sent. All lines of a push go out in one append and are synced before
// Push returns. A push retried after a crash may append its lines again:
// delivery is at least once.
func (p *Pusher) Push(_ context.Context, req sdk.PushRequest) error {
	if !sdk.ValidUUID(req.UUID) {
		return sdk.Permanent(fmt.Errorf("uuid %q cannot name a file", req.UUID))
	}
	lines, err := Lines(req.UUID, req.Rows)
	if err != nil {
		return sdk.Permanent(err)
	}
	path := filepath.Join(p.cfg.Dir, req.UUID+".jsonl")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	// One write with O_APPEND: lines of concurrent writers never interleave.
	if _, err := f.Write(lines); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// Lines renders rows as the JSON lines Push appends.
func Lines(uuid string, rows []sdk.Row) ([]byte, error) {
	var buf bytes.Buffer
	for _, r := range rows {
		data, err := r.Data.MarshalJSON()
		if err != nil {
			return nil, err
		}
		buf.WriteString(`{"uuid":`)
		buf.WriteString(strconv.Quote(uuid))
		if r.Index != nil {
			buf.WriteString(`,"index":`)
			buf.WriteString(strconv.Itoa(*r.Index))
		}
		buf.WriteString(`,"data":`)
		buf.Write(data)
		buf.WriteString("}\n")
	}
	return buf.Bytes(), nil
}
