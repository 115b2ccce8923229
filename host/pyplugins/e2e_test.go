package pyplugins_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// python is the interpreter the zipapps name on their first line.
const python = "/usr/bin/python3"

// bins holds the service binaries, the Go pusher-jsonl and the Python
// plugins, built once by TestMain.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "routing-pyplugins")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// build compiles the services and pusher-jsonl, and builds the Python
// plugins into zipapps with the script `make build` uses.
func build(dir string) error {
	for name, pkg := range map[string]string{
		"control-tower": "github.com/routinglayer/routing/host/cmd/control-tower",
		"data-gateway":  "github.com/routinglayer/routing/host/cmd/data-gateway",
		"pusher-jsonl":  "github.com/routinglayer/routing/examples/cmd/pusher-jsonl",
	} {
		path, err := testkit.Build(pkg, dir, name)
		if err != nil {
			return err
		}
		bins[name] = path
	}
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot run the Python plugins (%v: %s): install python3-grpcio and python3-protobuf (scripts/services up does)", python, err, out)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	sources := []string{
		filepath.Join(root, "examples/python/pusher-pyjsonl"),
		filepath.Join(root, "examples/python/watcher-pyfiledrop"),
		filepath.Join(root, "host/pyplugins/testdata/pusher-pybroken"),
	}
	cmd := exec.Command(python, append([]string{filepath.Join(root, "scripts/pyplugins"), "-o", dir}, sources...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/pyplugins: %v\n%s", err, out)
	}
	for _, src := range sources {
		bins[filepath.Base(src)] = filepath.Join(dir, filepath.Base(src))
	}
	return nil
}

// install copies a built plugin into dir under its name (copy, then rename).
func install(t *testing.T, dir, name string) {
	t.Helper()
	data, err := os.ReadFile(bins[name])
	testkit.Must(t, err)
	tmp := filepath.Join(dir, "."+name+".tmp")
	testkit.Must(t, os.WriteFile(tmp, data, 0o755))
	testkit.Must(t, os.Rename(tmp, filepath.Join(dir, name)))
}

// service is a control-tower or data-gateway binary running for one test.
type service struct {
	base   string
	stderr *testkit.LogBuffer
}

// start runs bin with env on a free port until the test ends; its log is
// shown when the test fails.
func start(t *testing.T, bin string, env ...string) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testkit.Must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &service{base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &testkit.LogBuffer{}}
	cmd := exec.Command(bin)
	cmd.Env = append(env, fmt.Sprintf("SERVER_PORT=%d", port), "DATA_DIR="+t.TempDir(),
		"PATH="+os.Getenv("PATH"), "TMPDIR="+os.TempDir(), "LOG_LEVEL=debug")
	cmd.Stderr = s.stderr
	testkit.Must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(bin), s.stderr.String())
		}
	})
	testkit.WaitFor(t, 20*time.Second, filepath.Base(bin)+" to answer", func() bool {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (s *service) call(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	testkit.Must(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	testkit.Must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	testkit.Must(t, err)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// pluginStatus is the part of GET /plugins/{name} the tests read.
type pluginStatus struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	State     string `json:"state"`
	PID       int    `json:"pid"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"lastError"`
	// PreviousError is, while it runs, why the process before ended.
	PreviousError string `json:"previousError"`
	Info          *struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		Language string `json:"language"`
	} `json:"info"`
	Config []struct {
		Name   string `json:"name"`
		Secret bool   `json:"secret"`
		Set    bool   `json:"set"`
		Value  string `json:"value"`
	} `json:"config"`
	Stderr []string `json:"stderr"`
}

func (s *service) plugin(t *testing.T, name string) pluginStatus {
	t.Helper()
	st, ok := s.lookup(t, name)
	if !ok {
		t.Fatalf("GET /plugins/%s: not found", name)
	}
	return st
}

// lookup is GET /plugins/{name}; ok is false until the plugin is found
// (a new file is started once it has settled, about a second).
func (s *service) lookup(t *testing.T, name string) (st pluginStatus, ok bool) {
	t.Helper()
	var raw json.RawMessage
	switch code := s.call(t, http.MethodGet, "/plugins/"+name, "", &raw); code {
	case http.StatusOK:
		testkit.Must(t, json.Unmarshal(raw, &st))
		return st, true
	case http.StatusNotFound:
		return st, false
	default:
		t.Fatalf("GET /plugins/%s: %d %s", name, code, raw)
		return st, false
	}
}

// waitRunning waits until the plugin runs in a process other than notPID.
func (s *service) waitRunning(t *testing.T, name string, notPID int) pluginStatus {
	t.Helper()
	var st pluginStatus
	testkit.WaitFor(t, 30*time.Second, name+" running", func() bool {
		var ok bool
		st, ok = s.lookup(t, name)
		return ok && st.State == "running" && st.PID != 0 && st.PID != notPID
	})
	return st
}

// checkListed checks what GET /plugins shows of a plugin.
func checkListed(t *testing.T, s *service, instance, kind, impl, version, language string) {
	t.Helper()
	var list struct {
		Plugins []pluginStatus `json:"plugins"`
	}
	s.call(t, http.MethodGet, "/plugins", "", &list)
	for _, p := range list.Plugins {
		if p.Name != instance {
			continue
		}
		if p.Kind != kind || p.State != "running" || p.Info == nil || p.Info.Name != impl ||
			p.Info.Version != version || p.Info.Language != language {
			t.Errorf("GET /plugins shows %s as %+v (info %+v), want a running %s %s %s in %s", instance, p, p.Info, kind, impl, version, language)
		}
		return
	}
	t.Errorf("GET /plugins does not list %s: %+v", instance, list.Plugins)
}

// post sends rows of one uuid to the gateway and returns the delivery id.
func post(t *testing.T, gw *service, uuid string, rows []string) int64 {
	t.Helper()
	var resp struct {
		ID int64 `json:"id"`
	}
	body := fmt.Sprintf(`{"uuid":%q,"rows":[%s]}`, uuid, strings.Join(rows, ","))
	if code := gw.call(t, http.MethodPost, "/data/batch", body, &resp); code != http.StatusAccepted {
		t.Fatalf("POST /data/batch: %d", code)
	}
	return resp.ID
}

// waitDelivered waits until the delivery is recorded as delivered to pusher.
func waitDelivered(t *testing.T, gw *service, id int64, pusher string) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("delivery %d to %s", id, pusher), func() bool {
		var st struct {
			Pushers []struct {
				Pusher string `json:"pusher"`
				State  string `json:"state"`
			} `json:"pushers"`
		}
		gw.call(t, http.MethodGet, fmt.Sprintf("/data/%d", id), "", &st)
		for _, p := range st.Pushers {
			if p.Pusher == pusher {
				return p.State == "delivered"
			}
		}
		return false
	})
}

// rowsFor returns request rows with indexes from..to-1 and values that
// must reach a file exactly as written, and the lines pusher-jsonl writes
// for them.
func rowsFor(uuid string, from, to int) (rows []string, lines string) {
	for i := from; i < to; i++ {
		data := fmt.Sprintf(`{"odMeasured":%d.50,"label":"well \"%d\" µ\u00e9","flag":true,"none":null,"tiny":-1e-3,"big":12345678901234567890}`, i, i)
		rows = append(rows, fmt.Sprintf(`{"index":%d,"data":%s}`, i, data))
		lines += fmt.Sprintf(`{"uuid":%q,"index":%d,"data":%s}`+"\n", uuid, i, data)
	}
	return rows, lines
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	testkit.Must(t, err)
	return string(data)
}

func TestPythonPusherWritesWhatTheGoPusherWrites(t *testing.T) {
	plugins, pyOut, goOut := t.TempDir(), t.TempDir(), t.TempDir()
	install(t, plugins, "pusher-pyjsonl")
	install(t, plugins, "pusher-jsonl")
	gw := start(t, bins["data-gateway"], "PLUGINS_DIR="+plugins, "PLUGIN_PYJSONL_DIR="+pyOut, "PLUGIN_JSONL_DIR="+goOut)
	gw.waitRunning(t, "pyjsonl", 0)
	gw.waitRunning(t, "jsonl", 0)
	checkListed(t, gw, "pyjsonl", "pusher", "pyjsonl", "1.0.0", "python")
	checkListed(t, gw, "jsonl", "pusher", "jsonl", "1.0.0", "go")

	want := map[string]string{}
	var last int64
	for batch := range 20 {
		for _, uuid := range []string{"run-a", "run-b"} {
			rows, lines := rowsFor(uuid, batch*5, batch*5+5)
			last = post(t, gw, uuid, rows)
			want[uuid] += lines
		}
	}
	waitDelivered(t, gw, last, "pyjsonl")
	waitDelivered(t, gw, last, "jsonl")
	for uuid, lines := range want {
		testkit.WaitFor(t, 30*time.Second, uuid+" written by both pushers", func() bool {
			return len(readFile(t, filepath.Join(pyOut, uuid+".jsonl"))) >= len(lines) &&
				len(readFile(t, filepath.Join(goOut, uuid+".jsonl"))) >= len(lines)
		})
		if got := readFile(t, filepath.Join(pyOut, uuid+".jsonl")); got != lines {
			t.Errorf("pusher-pyjsonl wrote %s.jsonl:\n%s\nwant:\n%s", uuid, got, lines)
		}
		if got, gotGo := readFile(t, filepath.Join(pyOut, uuid+".jsonl")), readFile(t, filepath.Join(goOut, uuid+".jsonl")); got != gotGo {
			t.Errorf("%s.jsonl differs between pusher-pyjsonl and pusher-jsonl:\n%s\n%s", uuid, got, gotGo)
		}
	}
}

func TestPythonPusherKilledIsRestartedAndDeliversWhatFollows(t *testing.T) {
	plugins, out := t.TempDir(), t.TempDir()
	install(t, plugins, "pusher-pyjsonl")
	gw := start(t, bins["data-gateway"], "PLUGINS_DIR="+plugins, "PLUGIN_PYJSONL_DIR="+out,
		"PLUGINS_MIN_BACKOFF=50ms", "PLUGINS_MAX_BACKOFF=200ms")
	first := gw.waitRunning(t, "pyjsonl", 0)

	var want string
	send := func(from, to int) int64 {
		rows, lines := rowsFor("k1", from, to)
		want += lines
		return post(t, gw, "k1", rows)
	}
	waitDelivered(t, gw, send(0, 10), "pyjsonl")
	testkit.Must(t, syscall.Kill(first.PID, syscall.SIGKILL))
	sentWhileDown := send(10, 20)
	second := gw.waitRunning(t, "pyjsonl", first.PID)
	if second.Restarts < 1 || !strings.Contains(second.PreviousError, "exited") {
		t.Errorf("after kill -9: restarts %d, previous error %q; want a restart after the exit", second.Restarts, second.PreviousError)
	}
	waitDelivered(t, gw, sentWhileDown, "pyjsonl")
	waitDelivered(t, gw, send(20, 30), "pyjsonl")
	if got := readFile(t, filepath.Join(out, "k1.jsonl")); got != want {
		t.Errorf("k1.jsonl:\n%s\nwant:\n%s", got, want)
	}
}

func TestPythonWatcherEmitsEachFileOnceAcrossAKill(t *testing.T) {
	plugins, inbox := t.TempDir(), t.TempDir()
	install(t, plugins, "watcher-pyfiledrop")
	// No broker: triggers are stored and stay pending, which is all this needs.
	ct := start(t, bins["control-tower"], "PLUGINS_DIR="+plugins, "PLUGIN_PYFILEDROP_DIR="+inbox,
		"PLUGIN_PYFILEDROP_SCAN_INTERVAL=50ms", "AMQP_URL=amqp://guest:guest@127.0.0.1:1/",
		"PLUGINS_MIN_BACKOFF=50ms", "PLUGINS_MAX_BACKOFF=200ms")
	first := ct.waitRunning(t, "pyfiledrop", 0)
	checkListed(t, ct, "pyfiledrop", "watcher", "pyfiledrop", "1.0.0", "python")

	drop := func(name, protocol string) {
		t.Helper()
		doc := fmt.Sprintf(`{"apiVersion": "OT-2/v1alpha1", "protocol": %q, "plate": {"rows": 2, "columns": 1},
 "spec": [{"volume": 150}, {"volume": 100}]}`, protocol)
		tmp := filepath.Join(inbox, "."+name+".tmp")
		testkit.Must(t, os.WriteFile(tmp, []byte(doc), 0o644))
		testkit.Must(t, os.Rename(tmp, filepath.Join(inbox, name)))
	}
	type trigger struct {
		UUID     string `json:"uuid"`
		Protocol string `json:"protocol"`
		Source   string `json:"source"`
		Metadata struct {
			Source string            `json:"source"`
			Spec   map[string]string `json:"spec"`
		} `json:"metadata"`
	}
	triggers := func() []trigger {
		var list struct {
			Triggers []trigger `json:"triggers"`
		}
		ct.call(t, http.MethodGet, "/triggers?source=watcher:pyfiledrop", "", &list)
		return list.Triggers
	}
	waitTriggers := func(n int) []trigger {
		t.Helper()
		var got []trigger
		testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d triggers", n), func() bool {
			got = triggers()
			return len(got) >= n
		})
		return got
	}

	drop("a.json", "FirstDrop")
	got := waitTriggers(1)
	if len(got) != 1 || got[0].Protocol != "FirstDrop" || got[0].Metadata.Source != "pyfiledrop" || got[0].Metadata.Spec["file"] != "a.json" {
		t.Fatalf("triggers after one drop: %+v", got)
	}

	// The watcher logs the emission once State holds it: kill it after that.
	emittedA := func() int {
		n := 0
		for _, line := range ct.plugin(t, "pyfiledrop").Stderr {
			if strings.Contains(line, `"trigger emitted"`) && strings.Contains(line, `"a.json"`) {
				n++
			}
		}
		return n
	}
	testkit.WaitFor(t, 10*time.Second, "a.json recorded", func() bool { return emittedA() == 1 })
	testkit.Must(t, syscall.Kill(first.PID, syscall.SIGKILL))
	second := ct.waitRunning(t, "pyfiledrop", first.PID)
	if second.Restarts < 1 {
		t.Errorf("restarts after kill -9: %d", second.Restarts)
	}
	// The restarted watcher scans a.json before b.json: once b.json's
	// trigger is stored, a.json has been looked at again.
	drop("b.json", "SecondDrop")
	got = waitTriggers(2)
	protocols := map[string]int{}
	for _, tr := range got {
		protocols[tr.Protocol]++
	}
	if len(got) != 2 || protocols["FirstDrop"] != 1 || protocols["SecondDrop"] != 1 {
		t.Errorf("triggers after the restart: %+v", got)
	}
	// Not even a duplicate emission: State told the new process a.json was done.
	if n := emittedA(); n != 1 {
		t.Errorf("a.json emitted %d times, want once:\n%s", n, strings.Join(ct.plugin(t, "pyfiledrop").Stderr, "\n"))
	}
}

func TestPythonPluginFailingAtStartEndsFailedWithItsError(t *testing.T) {
	plugins := t.TempDir()
	install(t, plugins, "pusher-pybroken")
	const token, apiKey = "s3cr3t-token-value", "s3cr3t-api-key-value"
	gw := start(t, bins["data-gateway"], "PLUGINS_DIR="+plugins, "PLUGINS_MIN_BACKOFF=10ms", "PLUGINS_MAX_BACKOFF=50ms",
		"PLUGIN_PYBROKEN_LABEL=blue", "PLUGIN_PYBROKEN_TOKEN="+token, "PLUGIN_PYBROKEN_API_KEY="+apiKey)
	var st pluginStatus
	testkit.WaitFor(t, 60*time.Second, "pybroken failed", func() bool {
		var ok bool
		st, ok = gw.lookup(t, "pybroken")
		return ok && st.State == "failed"
	})
	if !strings.Contains(st.LastError, "RuntimeError: calibration table missing") {
		t.Errorf("last error %q, want the plugin's exception", st.LastError)
	}
	if st.Restarts != 4 {
		t.Errorf("restarts %d, want 4 (five crashes in a row)", st.Restarts)
	}
	if st.Info == nil || st.Info.Language != "python" || st.Info.Version != "0.0.1" {
		t.Errorf("info %+v", st.Info)
	}
	traceback := false
	for _, line := range st.Stderr {
		traceback = traceback || strings.Contains(line, `"traceback"`) && strings.Contains(line, "calibration table missing")
	}
	if !traceback {
		t.Errorf("no traceback among the kept stderr lines:\n%s", strings.Join(st.Stderr, "\n"))
	}

	values := map[string]string{}
	for _, c := range st.Config {
		values[c.Name] = c.Value
	}
	if values["LABEL"] != "blue" || values["TOKEN"] != "********" || values["API_KEY"] != "********" {
		t.Errorf("configuration shown: %+v", st.Config)
	}
	var raw json.RawMessage
	gw.call(t, http.MethodGet, "/plugins", "", &raw)
	if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte(apiKey)) {
		t.Errorf("GET /plugins shows a secret: %s", raw)
	}
}
