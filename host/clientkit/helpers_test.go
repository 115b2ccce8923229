package clientkit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
)

var (
	must    = testkit.Must
	waitFor = testkit.WaitFor
)

// bins holds the binaries the tests run, built once by TestMain.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	testkit.MainWithBinaries(m, map[string]string{
		"control-tower": "github.com/routinglayer/routing/host/cmd/control-tower",
		"data-gateway":  "github.com/routinglayer/routing/host/cmd/data-gateway",
		"pusher-jsonl":  "github.com/routinglayer/routing/examples/cmd/pusher-jsonl",
		"pusher-probe":  "../datagateway/testdata/probe",
		"robot-sim":     "github.com/routinglayer/routing/examples/servicelayer/cmd/robot-sim",
	}, bins)
}

func brokerAddr() string {
	if a := os.Getenv("TEST_RABBITMQ_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:5672"
}

func brokerURL() string { return "amqp://guest:guest@" + brokerAddr() + "/" }

// amqpChannel opens a channel on the broker for the test's own checks.
func amqpChannel(tb testing.TB) *amqp.Channel {
	tb.Helper()
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		tb.Fatalf("RabbitMQ is not reachable at %s (run scripts/services up): %v", brokerAddr(), err)
	}
	tb.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	must(tb, err)
	return ch
}

// deleteQueues removes a test's queue, its dead-letter queue and exchange,
// and its exchange when the test ends.
func deleteQueues(tb testing.TB, queue, exchange string) {
	tb.Cleanup(func() {
		conn, err := amqp.Dial(brokerURL())
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(queue, false, false, false)
		_, _ = ch.QueueDelete(queue+".dead", false, false, false)
		_ = ch.ExchangeDelete(queue+".dead", false, false)
		_ = ch.ExchangeDelete(exchange, false, false)
	})
}

// queueDepth is the number of ready messages in queue.
func queueDepth(tb testing.TB, ch *amqp.Channel, queue string) int {
	tb.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	must(tb, err)
	return q.Messages
}

// startTower runs a control-tower in the test's process on its own
// exchange and data directory, publishing to amqpURL.
func startTower(tb testing.TB, amqpURL string) (controltower.Config, string) {
	tb.Helper()
	var cfg controltower.Config
	must(tb, config.Load(&cfg, []string{
		"SERVER_PORT=0",
		"DATA_DIR=" + tb.TempDir(),
		"PLUGINS_DIR=" + tb.TempDir(),
		"AMQP_URL=" + amqpURL,
		"AMQP_EXCHANGE=" + testkit.RandomName("test-triggers-"),
	}))
	cfg.Environ = []string{"PATH=" + os.Getenv("PATH")}
	_, base := testkit.Start(tb, controltower.Start, cfg)
	return cfg, base
}

// postTrigger posts a trigger and returns its uuid.
func postTrigger(tb testing.TB, base, body string) string {
	tb.Helper()
	r := testkit.Call(tb, http.MethodPost, base+"/triggers", body)
	if r.Status != http.StatusCreated {
		tb.Fatalf("POST /triggers: %d %s", r.Status, r.Body)
	}
	var t struct{ UUID string }
	r.JSON(tb, &t)
	return t.UUID
}

// logs collects a slog logger's records, for asserting what a kit did.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logger(tb testing.TB) *slog.Logger {
	var out io.Writer = l
	if testing.Verbose() {
		out = io.MultiWriter(l, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logs) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// proxy forwards a local port to a target. Cut closes every connection
// (the broker or the gateway vanishing for the client) and keeps
// listening; DropNextAnswer swallows the next answer from the target,
// cuts the connection it came on and refuses the connections that follow
// until Resume.
type proxy struct {
	addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	drop   chan []byte // set: the next answer goes here instead
	paused bool
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	p := &proxy{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	tb.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go p.back(c, up)
	}
}

// back copies the target's answers to the client, unless one is to be
// dropped.
func (p *proxy) back(c, up net.Conn) {
	defer func() { up.Close(); c.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.drop
			p.drop = nil
			if drop != nil {
				p.paused = true
			}
			p.mu.Unlock()
			if drop != nil {
				// Collect the rest of the answer, then cut the client off.
				answer := append([]byte(nil), buf[:n]...)
				_ = up.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				for {
					m, err := up.Read(buf)
					answer = append(answer, buf[:m]...)
					if err != nil {
						break
					}
				}
				drop <- answer
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// DropNextAnswer makes the next bytes the target sends be swallowed, and
// returns where they go.
func (p *proxy) DropNextAnswer() <-chan []byte {
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.drop = ch
	p.mu.Unlock()
	return ch
}

// Resume lets connections through again after DropNextAnswer.
func (p *proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Cut closes every connection through the proxy.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// gateway is a data-gateway binary on a fixed port and data directory,
// so it can be killed and started again as the same instance.
type gateway struct {
	tb      testing.TB
	port    int
	env     []string
	plugins string
	out     string
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newGateway prepares a gateway with one pusher: pusher-jsonl writing to
// out, or the probe (pusher name "probe") when probe is set, with env
// added.
func newGateway(tb testing.TB, probe bool, env ...string) *gateway {
	tb.Helper()
	g := &gateway{tb: tb, port: freePort(tb), plugins: tb.TempDir(), out: tb.TempDir()}
	name, bin := "pusher-jsonl", "pusher-jsonl"
	if probe {
		name, bin = "pusher-probe", "pusher-probe"
		env = append(env, "PLUGIN_PROBE_OUT="+g.out)
	} else {
		env = append(env, "PLUGIN_JSONL_DIR="+g.out)
	}
	install(tb, bins[bin], g.plugins, name)
	g.env = append([]string{
		fmt.Sprintf("SERVER_PORT=%d", g.port),
		"DATA_DIR=" + tb.TempDir(),
		"PLUGINS_DIR=" + g.plugins,
		"RETRY_MIN=20ms", "RETRY_MAX=200ms",
		"PATH=" + os.Getenv("PATH"),
	}, env...)
	tb.Cleanup(g.kill)
	return g
}

func (g *gateway) url() string { return fmt.Sprintf("http://127.0.0.1:%d", g.port) }

// start runs the binary and waits until its pusher runs.
func (g *gateway) start() {
	g.tb.Helper()
	g.cmd = exec.Command(bins["data-gateway"])
	g.cmd.Env = g.env
	g.stderr = &bytes.Buffer{}
	g.cmd.Stderr = g.stderr
	if testing.Verbose() {
		g.cmd.Stderr = io.MultiWriter(g.stderr, os.Stderr)
	}
	must(g.tb, g.cmd.Start())
	waitFor(g.tb, 60*time.Second, "the data-gateway's pusher to run", func() bool {
		r, err := http.Get(g.url() + "/plugins")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var list struct{ Plugins []struct{ State string } }
		return json.NewDecoder(r.Body).Decode(&list) == nil && len(list.Plugins) == 1 && list.Plugins[0].State == "running"
	})
}

// kill stops the binary with SIGKILL.
func (g *gateway) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		_ = g.cmd.Wait()
		g.cmd = nil
	}
}

// backlog is the pending tasks of the gateway's pusher.
func (g *gateway) backlog() int {
	r, err := http.Get(g.url() + "/status")
	if err != nil {
		return -1
	}
	defer r.Body.Close()
	var st struct{ Backlog map[string]int }
	if json.NewDecoder(r.Body).Decode(&st) != nil {
		return -1
	}
	n := 0
	for _, v := range st.Backlog {
		n += v
	}
	return n
}

func install(tb testing.TB, bin, dir, name string) {
	tb.Helper()
	data, err := os.ReadFile(bin)
	must(tb, err)
	tmp := filepath.Join(dir, "."+name+".tmp")
	must(tb, os.WriteFile(tmp, data, 0o755))
	must(tb, os.Rename(tmp, filepath.Join(dir, name)))
}

// row is a line of pusher-jsonl's or the probe's output.
type row struct {
	UUID  string          `json:"uuid"`
	Index *int            `json:"index"`
	Data  json.RawMessage `json:"data"`
	// Traceparent is the trace context the probe's Push saw.
	Traceparent string `json:"traceparent"`
}

// readRows reads every line of the JSON-lines files in dir.
func readRows(tb testing.TB, dir string) []row {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out []row
	for _, f := range files {
		fh, err := os.Open(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		must(tb, err)
		s := bufio.NewScanner(fh)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			var r row
			if json.Unmarshal(s.Bytes(), &r) == nil {
				out = append(out, r)
			}
		}
		fh.Close()
	}
	return out
}

// countRows counts the rows of readRows per "uuid/index".
func countRows(rows []row) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		k := r.UUID + "/-"
		if r.Index != nil {
			k = fmt.Sprintf("%s/%d", r.UUID, *r.Index)
		}
		out[k]++
	}
	return out
}
