// Package testkit holds the small helpers the host's tests share: failing
// on errors, waiting for a condition, building binaries and naming
// throwaway broker objects, booting a service in the test's process or
// as its binary, calling its HTTP API (every answer checked against the
// service's OpenAPI document), and a fresh PostgreSQL schema.
package testkit

import (
	"bytes"
	"compress/gzip"
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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Must fails the test on a non-nil error.
func Must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Build compiles the main package pkg into dir under name and returns its
// path.
func Build(pkg, dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// MainWithBinaries is a TestMain body: it builds pkgs (file name ->
// package) into a temporary directory, fills bins with their paths, runs
// the tests and exits.
func MainWithBinaries(m *testing.M, pkgs map[string]string, bins map[string]string) {
	dir, err := os.MkdirTemp("", "routing-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, pkg := range pkgs {
		if bins[name], err = Build(pkg, dir, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// RandomName is prefix with 12 random hex digits, for exchanges and
// queues a test creates.
func RandomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Status sends method url with body (as application/json) and, unless
// empty, a bearer token, and returns the answer's status code, checked
// like Send's.
func Status(tb testing.TB, method, url, token, body string) int {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	Must(tb, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := Client.Do(req)
	Must(tb, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Reply is an HTTP answer read whole.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the answer's body into v, failing the test if it cannot.
func (r Reply) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Call sends method url with body as application/json and reads the
// answer, checked like Send's.
func Call[B string | []byte](tb testing.TB, method, url string, body B) Reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(string(body)))
	Must(tb, err)
	req.Header.Set("Content-Type", "application/json")
	return Send(tb, req)
}

// Send sends req as it is (headers, Host and body untouched) and reads
// the answer. An answer of one of the services that its OpenAPI document
// does not allow fails the test (see Checked).
func Send(tb testing.TB, req *http.Request) Reply {
	tb.Helper()
	resp, err := Client.Do(req)
	Must(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Must(tb, err)
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// Problem decodes an RFC 9457 problem answer, failing the test unless the
// answer is one.
func (r Reply) Problem(tb testing.TB) (detail string, fields map[string]string) {
	tb.Helper()
	var p struct {
		Detail string
		Errors []struct{ Field, Reason string }
	}
	if r.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(r.Body, &p) != nil {
		tb.Fatalf("%d answer is not a problem body: %s", r.Status, r.Body)
	}
	fields = map[string]string{}
	for _, e := range p.Errors {
		fields[e.Field] = e.Reason
	}
	return p.Detail, fields
}

// Gzip compresses b.
func Gzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, err := zw.Write(b)
	Must(tb, err)
	Must(tb, zw.Close())
	return out.Bytes()
}

// PostgresURL makes a fresh schema in the test database
// ($TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
// for the test, drops it when the test ends, and returns a URL whose
// search_path is that schema. It fails the test when PostgreSQL is not
// reachable: `make test` starts it (scripts/services up).
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	Must(tb, err)
	defer db.Close()
	schema := RandomName("t_")
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("PostgreSQL is not reachable at %s (run scripts/services up): %v", base, err)
	}
	tb.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(base)
	Must(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Start boots a service in the test's process with start (controltower.Start,
// datagateway.Start) on cfg until the test ends, and returns it and its
// base URL. It logs at debug level to stderr under -v; a failed start or
// an error from its shutdown fails the test.
func Start[C any, S interface {
	Addr() string
	Wait() error
}](tb testing.TB, start func(context.Context, C, hclog.Logger) (S, error), cfg C) (S, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	svc, err := start(ctx, cfg, hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Debug}))
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

// RunBinary starts a service's binary with env (and this PATH) on a free
// port, waits until it answers /healthz, and returns its process and base
// URL; the process is killed when the test ends. Its stderr goes to the
// test's under -v.
func RunBinary(tb testing.TB, bin string, env []string) (*exec.Cmd, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(tb, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(slices.Clone(env), fmt.Sprintf("SERVER_PORT=%d", port), "PATH="+os.Getenv("PATH"))
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	Must(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitFor(tb, 20*time.Second, filepath.Base(bin)+" to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return cmd, base
}

// LogBuffer collects what a service or process logs, written from many
// goroutines while the test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
