package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const adminToken = "bench-admin-token-0123456789"

// build compiles the services, the benchmark's plugins and the peer
// (Benthos) into dir.
func build(dir string) (map[string]string, error) {
	bins := map[string]string{}
	for name, pkg := range map[string]string{
		"control-tower": "./host/cmd/control-tower",
		"data-gateway":  "./host/cmd/data-gateway",
		"pusher-jsonl":  "./examples/cmd/pusher-jsonl",
		"watcher-burst": "./scripts/bench/cmd/watcher-burst",
	} {
		bins[name] = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bins[name], pkg).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	peer, err := buildPeer(dir)
	if err != nil {
		return nil, err
	}
	bins["benthos"] = peer
	return bins, nil
}

// service is a service running as a child process.
type service struct {
	cmd  *exec.Cmd
	base string
	log  *os.File
}

// startService runs bin with env and waits until it answers /healthz on
// the address it logs.
func startService(bin string, env []string, logPath string) (*service, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if i := strings.Index(line, "url=http://"); i >= 0 && !sent {
				urls <- strings.Fields(line[i+4:])[0]
				sent = true
			}
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	select {
	case u := <-urls:
		return &service{cmd: cmd, base: u, log: logFile}, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start within 30s; see %s", bin, logPath)
	}
}

func (s *service) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}

func (s *service) pid() int { return s.cmd.Process.Pid }

// get decodes the JSON answer of an operator GET.
func (s *service) get(path string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type pluginStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	PID   int    `json:"pid"`
}

func (s *service) plugin(name string) (pluginStatus, error) {
	var st pluginStatus
	err := s.get("/plugins/"+name, &st)
	return st, err
}

// waitPlugin polls until the plugin runs with a pid other than notPID.
func (s *service) waitPlugin(name string, notPID int, timeout time.Duration) (pluginStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.plugin(name)
		if err == nil && st.State == "running" && st.PID != 0 && st.PID != notPID {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("plugin %s not running after %s (state %q, %v)", name, timeout, st.State, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metric sums the series of name whose labels include want.
func (s *service) metric(name string, want map[string]string) (float64, error) {
	fams, err := s.scrape()
	if err != nil {
		return 0, err
	}
	return fams.sum(name, want), nil
}

// families are the metrics of one scrape.
type families map[string]*dto.MetricFamily

// scrape reads the service's metrics once. A scrape costs the service
// (its process collector reads /proc), so a poll takes every figure it
// needs from one.
func (s *service) scrape() (families, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// sum adds up the series of name whose labels include want.
func (fams families) sum(name string, want map[string]string) float64 {
	sum := 0.0
	for _, m := range fams[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// counters are the figures of a service that the bench takes the
// difference of over a load: the store's write transactions and writes
// (expvar "store" on DEBUG_ADDR), the time SQLite's writer was busy, and
// the pushes made.
type counters struct{ transactions, writes, busy, pushes float64 }

func (s *service) counters(debugAddr string) counters {
	var c counters
	c.pushes, _ = s.metric("routing_push_duration_seconds", nil)
	resp, err := http.Get("http://" + debugAddr + "/debug/vars")
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	var vars struct {
		Store struct {
			Transactions float64 `json:"transactions"`
			Writes       float64 `json:"writes"`
			Busy         float64 `json:"busy_us"`
		} `json:"store"`
	}
	if json.NewDecoder(resp.Body).Decode(&vars) == nil {
		c.transactions, c.writes, c.busy = vars.Store.Transactions, vars.Store.Writes, vars.Store.Busy
	}
	return c
}

// memory reads a process's resident set and its peak, in MiB.
// cpuSeconds is the CPU time pid used so far, user and system, in
// seconds (at the kernel's clock tick, 10 ms).
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name, which ends with ")": utime
	// and stime are the 14th and 15th of the line.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func memory(pid int) (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}
