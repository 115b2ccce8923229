package datagateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
)

var (
	must    = testkit.Must
	waitFor = testkit.WaitFor
)

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
	cfg.Environ = e.vars
	return cfg
}

// start boots the service in this process until the test ends.
func start(tb testing.TB, cfg datagateway.Config) (*datagateway.Service, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	svc, err := datagateway.Start(ctx, cfg, hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Debug}))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := svc.Wait(); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return svc, "http://" + svc.Addr()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

func call(tb testing.TB, method, url, body string) response {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	must(tb, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(tb, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
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

// postgresURL returns a URL to a fresh schema of the test database.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	must(tb, err)
	defer db.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("PostgreSQL is not reachable at %s (run scripts/services up): %v", base, err)
	}
	tb.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// runBinary starts the data-gateway binary and returns it and its URL.
func runBinary(tb testing.TB, vars []string) (*exec.Cmd, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bins["data-gateway"])
	cmd.Env = append(append([]string{}, vars...), fmt.Sprintf("SERVER_PORT=%d", port))
	var stderr bytes.Buffer
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	} else {
		cmd.Stderr = &stderr
	}
	must(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(tb, 20*time.Second, "the data-gateway to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return cmd, base
}
