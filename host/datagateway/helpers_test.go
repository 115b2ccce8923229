package datagateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
)

var (
	must        = testkit.Must
	waitFor     = testkit.WaitFor
	call        = testkit.Call[string]
	postgresURL = testkit.PostgresURL
)

type response = testkit.Reply

// bins holds the plugin and service binaries, built once by TestMain.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	testkit.MainWithBinaries(m, map[string]string{
		"pusher-probe": "./testdata/probe",
		"pusher-jsonl": "github.com/routinglayer/routing/examples/cmd/pusher-jsonl",
		"data-gateway": "github.com/routinglayer/routing/host/cmd/data-gateway",
	}, bins)
}

// install copies a built binary into dir under file (copy, then rename).
func install(tb testing.TB, bin, dir, file string) {
	tb.Helper()
	data, err := os.ReadFile(bins[bin])
	must(tb, err)
	tmp := filepath.Join(dir, "."+file+".tmp")
	must(tb, os.WriteFile(tmp, data, 0o755))
	must(tb, os.Rename(tmp, filepath.Join(dir, file)))
}

// env builds a test configuration: port 0, fresh data and plugin dirs, fast
// retries.
type env struct {
	vars    []string
	plugins string
	out     string
}

func newEnv(tb testing.TB, extra ...string) *env {
	tb.Helper()
	e := &env{plugins: tb.TempDir(), out: tb.TempDir()}
	e.vars = append([]string{
		"SERVER_PORT=0",
		"DATA_DIR=" + tb.TempDir(),
		"PLUGINS_DIR=" + e.plugins,
		"RETRY_MIN=20ms",
		"RETRY_MAX=100ms",
		"PUSH_TIMEOUT=5s",
		"PATH=" + os.Getenv("PATH"),
	}, extra...)
	return e
}

func (e *env) config(tb testing.TB) datagateway.Config {
	tb.Helper()
	var cfg datagateway.Config
	must(tb, config.Load(&cfg, e.vars))
	return cfg
}

// start boots the service in this process until the test ends.
func start(tb testing.TB, cfg datagateway.Config) (*datagateway.Service, string) {
	tb.Helper()
	return testkit.Start(tb, datagateway.Start, cfg)
}

// line is what the probe pusher records per delivered row.
type line struct {
	UUID    string          `json:"uuid"`
	Index   *int            `json:"index"`
	Data    json.RawMessage `json:"data"`
	Attempt int             `json:"attempt"`
	PID     int             `json:"pid"`
	Batch   int             `json:"batch"`
	Push    int64           `json:"push"`
	Bytes   int             `json:"bytes"`
}

// lines reads the probe's record of one instance.
func lines(tb testing.TB, dir, instance string) []line {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, instance+".jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	must(tb, err)
	defer f.Close()
	var out []line
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		var l line
		if json.Unmarshal(s.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// rowKey identifies a row by uuid and index.
func rowKey(l line) string { return fmt.Sprintf("%s/%d", l.UUID, *l.Index) }

// checkOrder fails unless, per uuid, rows were first delivered in
// increasing index order; it returns the distinct rows and the duplicates.
func checkOrder(tb testing.TB, ls []line) (distinct, dups int) {
	tb.Helper()
	seen := map[string]bool{}
	last := map[string]int{}
	for _, l := range ls {
		k := rowKey(l)
		if seen[k] {
			dups++
			continue
		}
		seen[k] = true
		if prev, ok := last[l.UUID]; ok && *l.Index <= prev {
			tb.Fatalf("uuid %s: row %d first delivered after row %d", l.UUID, *l.Index, prev)
		}
		last[l.UUID] = *l.Index
	}
	return len(seen), dups
}

// runBinary starts the data-gateway binary and returns it and its URL.
func runBinary(tb testing.TB, vars []string) (*exec.Cmd, string) {
	tb.Helper()
	return testkit.RunBinary(tb, bins["data-gateway"], vars)
}
