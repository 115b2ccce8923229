package pluginmgr_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routinglayer/routing/host/pluginmgr"
)

// A plugin printing before it serves is named as such, with its line,
// rather than with go-plugin's guesses about architectures.
func TestStdoutBeforeTheHandshakeIsNamed(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".watcher-chatty.tmp")
	must(t, os.WriteFile(tmp, []byte("#!/bin/sh\necho 'hello from main'\nsleep 5\n"), 0o755))
	must(t, os.Rename(tmp, filepath.Join(dir, "watcher-chatty")))
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH")}, func(c *pluginmgr.Config) { c.MaxFastCrashes = 1 })
	st := h.waitState(t, "chatty", pluginmgr.StateFailed, nil)
	if want := `wrote to stdout before the handshake: "hello from main"`; !strings.Contains(st.LastError, want) || strings.Contains(st.LastError, "architecture") {
		t.Fatalf("last error %q, want it to contain %q and no guess about the architecture", st.LastError, want)
	}
}

// A plugin refusing its configuration ends failed at once, with its error:
// restarting cannot fix it.
func TestConfigErrorFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-misconfigured")
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH"), "PLUGIN_MISCONFIGURED_CONFIG_ERROR=PLUGIN_MISCONFIGURED_URL is required but not set"}, nil)
	st := h.waitState(t, "misconfigured", pluginmgr.StateFailed, nil)
	if st.Restarts != 0 || !strings.Contains(st.LastError, "invalid plugin configuration: PLUGIN_MISCONFIGURED_URL is required but not set") {
		t.Fatalf("status %+v, want failed without restarts, with the configuration error", st)
	}
	if st.Version != "1.0.0" {
		t.Errorf("version %q, want the plugin's 1.0.0 at the top level", st.Version)
	}
}

// The host re-logs a plugin's JSON lines with their members in order and
// their values as written.
func TestRelogKeepsValues(t *testing.T) {
	var buf bytes.Buffer
	r := pluginmgr.NewRelogger(&buf)
	lines := `{"@level":"warn","@message":"poll slow","@timestamp":"2026-11-30T07:00:00.000000Z","every":"2s","count":3,"big":2000000000,"ratio":0.50,"ok":true,"none":null}` + "\n" +
		"not json\n"
	for _, part := range strings.SplitAfter(lines, "\n") {
		if _, err := r.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for _, want := range []string{
		`[WARN]  poll slow: every=2s count=3 big=2000000000 ratio=0.50 ok=true none=<nil>`,
		`[DEBUG] not json`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log\n%s\nlacks %q", out, want)
		}
	}
}

// A line without its newline is logged in pieces, not held whole.
func TestRelogBoundsALine(t *testing.T) {
	var buf bytes.Buffer
	r := pluginmgr.NewRelogger(&buf)
	if _, err := r.Write(bytes.Repeat([]byte("x"), 150<<10)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "[DEBUG]"); n != 2 {
		t.Fatalf("%d lines logged of 150 KiB without a newline, want 2 pieces of 64 KiB (the rest held)", n)
	}
}
