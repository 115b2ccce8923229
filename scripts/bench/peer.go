package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The peer is Benthos v4 (scripts/bench/benthos, a module of its own so
// that its dependencies stay out of the routing layer's), doing what the
// data-gateway does with pusher-jsonl in one process and without storing
// anything durably: it takes POST /data/batch, splits the rows, adds the
// uuid to each and appends them as one JSON line each to <dir>/<uuid>.jsonl.
// Its http_server answers once the file output has written the request's
// lines.
const peerConfig = `http:
  enabled: false
logger:
  level: WARN
input:
  http_server:
    address: %s
    path: /data/batch
    allowed_verbs: [POST]
pipeline:
  processors:
    - mapping: |
        let uuid = this.uuid
        root = this.rows.map_each(r -> {"uuid": $uuid, "index": r.index, "data": r.data})
    - unarchive:
        format: json_array
output:
  file:
    path: %s/${! json("uuid") }.jsonl
    codec: lines
`

// buildPeer builds the peer into dir; it is built in its own module
// (GOWORK=off) from the Go module proxy.
func buildPeer(dir string) (string, error) {
	bin, err := filepath.Abs(filepath.Join(dir, "benthos"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("scripts", "bench", "benthos")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build scripts/bench/benthos: %v\n%s", err, out)
	}
	return bin, nil
}

// peerRun measures the peer under the gateway's load: its accepted rows
// per second, latency, and end to end (accepted rows over the load and
// the drain, which ends when the last accepted row is in its file).
func peerRun(ctx context.Context, o options, bin, dir string, bodies [][]byte, res results) error {
	out := outputDir(dir, "peer-out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "benthos.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, peerConfig, addr, out), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "benthos.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	url := "http://" + addr + "/data/batch"
	if err := waitUntil(30*time.Second, "the peer to listen", func() bool {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"uuid":"warmup","rows":[{"index":0,"data":{"x":1}}]}`))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return err
	}
	lines := newLineCounter(out)
	if err := waitUntil(10*time.Second, "the peer's warm-up row", func() bool { return lines.count() >= 1 }); err != nil {
		return err
	}
	r := load(ctx, url, "", bodies, o.conns, o.duration, http.StatusOK)
	loadEnd := time.Now()
	if r.OK == 0 {
		return fmt.Errorf("peer: nothing accepted: %s", r.FirstError)
	}
	want := int64(r.OK*rowsPerRequest) + 1
	if err := waitUntil(5*time.Minute, "the peer's rows to be written", func() bool { return lines.count() >= want }); err != nil {
		return err
	}
	lag := time.Since(loadEnd)
	_, peak := memory(cmd.Process.Pid)
	res.add("peer.intake", r.perSecond()*rowsPerRequest)
	res.add("peer.p99", ms(r.percentile(0.99)))
	res.add("peer", float64(r.OK*rowsPerRequest)/(r.Elapsed+lag).Seconds())
	res.add("peer.lag", lag.Seconds())
	res.add("mem.peer.peak", peak)
	return nil
}

// outputDir is where a run's JSON-lines files go: on tmpfs (/dev/shm)
// when there is one, so that the destination's disk is not what is
// measured, else under dir.
func outputDir(dir, name string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "routing-bench-"+name); err == nil {
			return d
		}
	}
	return filepath.Join(dir, name)
}

// lineCounter counts the complete lines in the files of a directory,
// reading only what was appended since it last looked.
type lineCounter struct {
	dir   string
	seen  map[string]int64 // bytes read per file
	lines int64
	buf   []byte
}

func newLineCounter(dir string) *lineCounter {
	return &lineCounter{dir: dir, seen: map[string]int64{}, buf: make([]byte, 1<<20)}
}

// count returns the lines written so far.
func (c *lineCounter) count() int64 {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return c.lines
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		c.read(filepath.Join(c.dir, e.Name()))
	}
	return c.lines
}

func (c *lineCounter) read(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	off := c.seen[path]
	for {
		n, err := f.ReadAt(c.buf, off)
		c.lines += int64(bytes.Count(c.buf[:n], []byte{'\n'}))
		off += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	c.seen[path] = off
}
