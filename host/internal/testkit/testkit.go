// Package testkit holds the small helpers the host's tests share: failing
// on errors, waiting for a condition, building binaries and naming
// throwaway broker objects.
package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// Status sends method url with body and, unless empty, a bearer token,
// and returns the answer's status code.
func Status(tb testing.TB, method, url, token, body string) int {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	Must(tb, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	Must(tb, err)
	resp.Body.Close()
	return resp.StatusCode
}
