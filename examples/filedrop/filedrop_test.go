package filedrop_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routinglayer/routing/examples/filedrop"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/sdktest"
)

const wait = 10 * time.Second

// drop writes a file the way operators are told to: copy, then rename.
func drop(tb testing.TB, dir, name string, data []byte) {
	tb.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		tb.Fatal(err)
	}
}

func sample(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func options(dir string) sdktest.Options {
	return sdktest.Options{Config: map[string]string{"DIR": dir, "SCAN_INTERVAL": "100ms"}}
}

// settleScans lets the watcher scan a few more times, to show that nothing
// more is emitted.
func settleScans() { time.Sleep(500 * time.Millisecond) }

func TestFileBecomesOneTrigger(t *testing.T) {
	dir := t.TempDir()
	svc := sdktest.NewService()
	svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "chibio.json", sample(t, "bioreactor.json"))

	got := svc.WaitTriggers(t, 1, wait)
	tr := got[0].Trigger
	if tr.APIVersion != "ChiBio/v1alpha1/ChioBio1" || tr.Protocol != "Bioreactor" {
		t.Fatalf("trigger fields: %+v", tr)
	}
	var spec map[string]any
	if err := json.Unmarshal(tr.Spec, &spec); err != nil || spec["deviceName"] != "Hydrogen" || spec["od"] != 0.42 {
		t.Fatalf("spec: %s (%v)", tr.Spec, err)
	}
	if tr.Metadata == nil || tr.Metadata.Source != "filedrop" || string(tr.Metadata.Spec) != `{"file":"chibio.json"}` {
		t.Fatalf("default metadata: %+v", tr.Metadata)
	}
	settleScans()
	if n := len(svc.Triggers()); n != 1 {
		t.Fatalf("emitted %d triggers for one file, want 1", n)
	}
}

func TestInvalidFilesAreSkippedAndWatchingGoesOn(t *testing.T) {
	dir := t.TempDir()
	svc := sdktest.NewService()
	run := svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "a-bad-version.json", []byte(`{"apiVersion":"OT-2","protocol":"P","spec":{"v":1}}`))
	drop(t, dir, "b-malformed.json", []byte(`{"apiVersion":`))
	drop(t, dir, "c-plate.json", sample(t, "plate-transfer.json"))

	got := svc.WaitTriggers(t, 1, wait)
	if got[0].Trigger.Protocol != "PlateTransfer" || got[0].Trigger.Plate.Wells() != 8 {
		t.Fatalf("emitted %+v", got[0].Trigger)
	}
	for _, want := range []string{"invalid/a-bad-version.json", "invalid/b-malformed.json", "emitted/c-plate.json"} {
		waitFor(t, "state key "+want, func() bool { return contains(svc.State.Keys(), want) })
	}
	select {
	case <-run.Done():
		t.Fatalf("watcher stopped on an invalid file: %v", run.Err())
	default:
	}

	// A fixed file is read again.
	drop(t, dir, "a-bad-version.json", []byte(`{"apiVersion":"OT-2/v1","protocol":"P","spec":{"v":1}}`))
	got = svc.WaitTriggers(t, 2, wait)
	if got[1].Trigger.APIVersion != "OT-2/v1" {
		t.Fatalf("fixed file emitted as %+v", got[1].Trigger)
	}
}

func TestRestartDoesNotEmitAgain(t *testing.T) {
	dir := t.TempDir()
	svc := sdktest.NewService()
	first := svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "one.json", sample(t, "bioreactor.json"))
	svc.WaitTriggers(t, 1, wait)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	// Same host, same State: a new process of the plugin.
	svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "two.json", sample(t, "plate-transfer.json"))
	got := svc.WaitTriggers(t, 2, wait)
	settleScans()
	if n := len(svc.Triggers()); n != 2 || got[1].Trigger.Protocol != "PlateTransfer" {
		t.Fatalf("after restart: %d triggers (%+v), want one.json once and two.json once", n, svc.Triggers())
	}

	// New content under an old name is a new trigger with a new key.
	drop(t, dir, "one.json", sample(t, "plate-transfer.json"))
	got = svc.WaitTriggers(t, 3, wait)
	if got[2].Key == got[0].Key {
		t.Fatalf("changed file reused key %s", got[0].Key)
	}
}

func TestUnavailableHostIsRetried(t *testing.T) {
	dir := t.TempDir()
	svc := sdktest.NewService()
	var refusals atomic.Int32
	svc.Reject = func(sdk.Trigger, string) error {
		if refusals.Add(1) <= 3 {
			return sdk.ErrUnavailable
		}
		return nil
	}
	svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "retry.json", sample(t, "bioreactor.json"))
	svc.WaitTriggers(t, 1, wait)
	settleScans()
	if n := len(svc.Triggers()); n != 1 || refusals.Load() < 4 {
		t.Fatalf("got %d triggers after %d attempts, want exactly 1 after 4", n, refusals.Load())
	}
	if !errors.Is(svc.Rejected()[0], sdk.ErrUnavailable) {
		t.Fatalf("rejections: %v", svc.Rejected())
	}
}

func TestDoneDirReceivesEmittedFiles(t *testing.T) {
	dir, done := t.TempDir(), filepath.Join(t.TempDir(), "done")
	svc := sdktest.NewService()
	opts := options(dir)
	opts.Config["DONE_DIR"] = done
	svc.RunWatcher(t, filedrop.New(), opts)
	drop(t, dir, "moved.json", sample(t, "bioreactor.json"))
	svc.WaitTriggers(t, 1, wait)
	waitFor(t, "the emitted file to move to the done directory", func() bool {
		_, err := os.Stat(filepath.Join(done, "moved.json"))
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(dir, "moved.json")); !os.IsNotExist(err) {
		t.Fatalf("file still in the watched directory: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]string
	}{
		{"missing dir", map[string]string{}},
		{"dir does not exist", map[string]string{"DIR": "/nonexistent/filedrop"}},
		{"bad interval", map[string]string{"DIR": "/tmp", "SCAN_INTERVAL": "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := sdktest.NewService().RunWatcher(t, filedrop.New(), sdktest.Options{Config: tt.config})
			if err := run.Err(); !errors.Is(err, sdk.ErrConfig) {
				t.Fatalf("want ErrConfig, got %v", err)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Files written by Windows tools: a byte order mark is accepted; a
// repeated member and a Windows-1252 byte are refused like any invalid
// file, since either would make the trigger a guess.
func TestWindowsFiles(t *testing.T) {
	dir := t.TempDir()
	svc := sdktest.NewService()
	svc.RunWatcher(t, filedrop.New(), options(dir))
	drop(t, dir, "a-twice.json", []byte(`{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","protocol":"Other","spec":{"volume":150}}`))
	drop(t, dir, "b-cp1252.json", []byte("{\"apiVersion\":\"OT-2/v1alpha1\",\"protocol\":\"Probe\",\"spec\":{\"unit\":\"\xb5L\"}}"))
	drop(t, dir, "c-bom.json", []byte("\xef\xbb\xbf"+`{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150}}`))

	got := svc.WaitTriggers(t, 1, wait)
	if got[0].Trigger.Protocol != "Probe" || string(got[0].Trigger.Spec) != `{"volume":150}` {
		t.Fatalf("file with a BOM emitted as %+v", got[0].Trigger)
	}
	for _, want := range []string{"invalid/a-twice.json", "invalid/b-cp1252.json", "emitted/c-bom.json"} {
		waitFor(t, "state key "+want, func() bool { return contains(svc.State.Keys(), want) })
	}
	if n := len(svc.Triggers()); n != 1 {
		t.Fatalf("emitted %d triggers, want only the file with a BOM", n)
	}
}

// The contract's checks: Info, configuration errors, secrets and
// cancellation.
func TestConformance(t *testing.T) {
	sdktest.CheckWatcher(t, func() sdk.Watcher { return filedrop.New() }, options(t.TempDir()))
}
