package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
)

var (
	must       = testkit.Must
	waitFor    = testkit.WaitFor
	randomName = testkit.RandomName
)

// bins holds the data-gateway's test pusher and the plugin manager's
// probe (a watcher under a watcher- name), built once by TestMain.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	testkit.MainWithBinaries(m, map[string]string{
		"pusher-probe":  "../../datagateway/testdata/probe",
		"watcher-probe": "../../pluginmgr/testdata/probe",
	}, bins)
}

// result is what one routectl run produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs routectl in this process with env as its whole environment.
type cli struct {
	env map[string]string
}

func (c cli) run(args ...string) result { return c.runStdin("", args...) }

func (c cli) runStdin(stdin string, args ...string) result {
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs a command that must succeed silently on stderr; it returns stdout.
func (c cli) ok(tb testing.TB, args ...string) string {
	tb.Helper()
	r := c.run(args...)
	if r.code != 0 || r.stderr != "" {
		tb.Fatalf("routectl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// fails runs a command that must exit with code, saying nothing on
// stdout; it returns stderr.
func (c cli) fails(tb testing.TB, code int, args ...string) string {
	tb.Helper()
	r := c.run(args...)
	if r.code != code || r.stdout != "" {
		tb.Fatalf("routectl %s: want exit %d and no stdout, got %s", strings.Join(args, " "), code, r)
	}
	return r.stderr
}

// jsonOf runs a --json command and decodes its output into v.
func (c cli) jsonOf(tb testing.TB, v any, args ...string) {
	tb.Helper()
	out := c.ok(tb, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		tb.Fatalf("routectl --json %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tableRows splits table output into its header and rows, each row as
// whitespace-separated fields.
func tableRows(tb testing.TB, out, header string) [][]string {
	tb.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != header {
		tb.Fatalf("table header %q, want %q\n%s", got, header, out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		if l == "" {
			break // a second table follows
		}
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// pluginList is the answer of GET /plugins, as far as the tests look.
type pluginList struct {
	Plugins []struct {
		Name, State string
		PID         int
		Info        *struct{ Version string }
	}
	Skipped []struct{ File, Reason string }
}

// startGateway runs a data-gateway with the probe pusher installed until
// the test ends and waits for the probe to run; extra adds variables.
func startGateway(t *testing.T, extra ...string) cli {
	t.Helper()
	plugins := t.TempDir()
	data, err := os.ReadFile(bins["pusher-probe"])
	must(t, err)
	must(t, os.WriteFile(filepath.Join(plugins, "pusher-probe"), data, 0o755))
	vars := append([]string{
		"SERVER_PORT=0",
		"DATA_DIR=" + t.TempDir(),
		"PLUGINS_DIR=" + plugins,
		"RETRY_MIN=20ms",
		"RETRY_MAX=100ms",
		"PLUGIN_PROBE_OUT=" + t.TempDir(),
		"PATH=" + os.Getenv("PATH"),
	}, extra...)
	var cfg datagateway.Config
	must(t, config.Load(&cfg, vars))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := datagateway.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := svc.Wait(); err != nil {
			t.Errorf("data-gateway shutdown: %v", err)
		}
	})
	c := cli{env: map[string]string{"ROUTECTL_URL": "http://" + svc.Addr()}}
	waitFor(t, 60*time.Second, "the probe pusher to run", func() bool {
		var list pluginList
		c.jsonOf(t, &list, "plugins")
		return len(list.Plugins) == 1 && list.Plugins[0].State == "running"
	})
	return c
}

// startTower runs a control-tower on its own exchange until the test ends;
// extra adds variables.
func startTower(t *testing.T, extra ...string) cli {
	t.Helper()
	broker := os.Getenv("TEST_RABBITMQ_ADDR")
	if broker == "" {
		broker = "127.0.0.1:5672"
	}
	amqpURL := "amqp://guest:guest@" + broker + "/"
	exchange := randomName("routectl-test-")
	var cfg controltower.Config
	must(t, config.Load(&cfg, append([]string{
		"SERVER_PORT=0",
		"DATA_DIR=" + t.TempDir(),
		"PLUGINS_DIR=" + t.TempDir(),
		"AMQP_URL=" + amqpURL,
		"AMQP_EXCHANGE=" + exchange,
	}, extra...)))
	cfg.Environ = []string{"PATH=" + os.Getenv("PATH")}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := controltower.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := svc.Wait(); err != nil {
			t.Errorf("control-tower shutdown: %v", err)
		}
		if conn, err := amqp.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
	return cli{env: map[string]string{"ROUTECTL_URL": "http://" + svc.Addr()}}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	c := cli{}
	help := c.ok(t, "help")
	for _, want := range []string{"usage: routectl [flags] <command>", "help", "--url", "--token", "--json", "--timeout", "ROUTECTL_URL", "ROUTECTL_TOKEN"} {
		if !strings.Contains(help, want) {
			t.Errorf("help does not mention %q:\n%s", want, help)
		}
	}
	for _, cmd := range commands {
		if !strings.Contains(help, "\n  "+cmd.synopsis()) {
			t.Errorf("help does not list %q:\n%s", cmd.synopsis(), help)
		}
	}

	tests := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"no command", nil, []string{"usage: routectl [flags] <command>", "post-trigger"}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "usage: routectl [flags] <command>", "deadletters"}},
		{"unknown global flag", []string{"--bogus", "plugins"}, []string{"-bogus", "usage: routectl [flags] <command>"}},
		{"bad url", []string{"--url", "ftp://host", "plugins"}, []string{`--url="ftp://host": want http(s)://host:port`}},
		{"bad timeout", []string{"--timeout", "0s", "plugins"}, []string{"--timeout=0s"}},
		{"missing argument", []string{"restart"}, []string{"routectl restart: missing <name>", "usage: routectl restart <name>"}},
		{"extra argument", []string{"trigger", "a", "b"}, []string{`unexpected argument "b"`}},
		{"bad id", []string{"retry", "abc"}, []string{`dead letter id "abc": want a positive integer`}},
		{"bad command flag", []string{"triggers", "--limit", "many"}, []string{"routectl triggers:", "--limit N"}},
		{"unknown command flag", []string{"deadletters", "--state", "dead"}, []string{"-state", "--pusher NAME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr := c.fails(t, 2, tt.args...)
			for _, want := range tt.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}

	// A command's -h shows its own flags and succeeds.
	out := c.ok(t, "triggers", "-h")
	if !strings.HasPrefix(out, "usage: routectl triggers") || !strings.Contains(out, "--status STATUS") {
		t.Errorf("triggers -h:\n%s", out)
	}
}

func TestConnectionErrorsNameTheURL(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	url := "http://" + ln.Addr().String()
	ln.Close()
	stderr := cli{}.fails(t, 1, "--url", url, "--token", "secret-token-0123456789", "plugins")
	if !strings.HasPrefix(stderr, "routectl: cannot reach "+url+": ") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("want one line naming %s, got %q", url, stderr)
	}
	if strings.Contains(stderr, "secret-token") {
		t.Fatalf("the token was printed: %q", stderr)
	}

	// A service that takes the connection but never answers.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	url = "http://" + ln.Addr().String()
	stderr = cli{}.fails(t, 1, "--url", url, "--timeout", "200ms", "deadletters")
	if want := "routectl: " + url + " gave no answer within 200ms (see --timeout)\n"; stderr != want {
		t.Fatalf("timeout: %q, want %q", stderr, want)
	}
}

func TestPluginsAndRestart(t *testing.T) {
	t.Parallel()
	c := startGateway(t)
	var list pluginList
	c.jsonOf(t, &list, "plugins")
	p := list.Plugins[0]
	if p.Name != "probe" || p.PID == 0 || p.Info == nil || p.Info.Version != "1.0.0" {
		t.Fatalf("plugins JSON: %+v", list)
	}

	rows := tableRows(t, c.ok(t, "plugins"), "NAME KIND STATE PID VERSION RESTARTS LAST ERROR")
	want := []string{"probe", "pusher", "running", strconv.Itoa(p.PID), "1.0.0", "0", "-"}
	if len(rows) != 1 || strings.Join(rows[0], " ") != strings.Join(want, " ") {
		t.Fatalf("plugins table rows %q, want %q", rows, want)
	}

	out := c.ok(t, "restart", "probe")
	m := regexp.MustCompile(`^restarted probe: running, pid (\d+)\n$`).FindStringSubmatch(out)
	if m == nil || m[1] == strconv.Itoa(p.PID) {
		t.Fatalf("restart: %q, want a pid other than %d", out, p.PID)
	}
	rows = tableRows(t, c.ok(t, "plugins"), "NAME KIND STATE PID VERSION RESTARTS LAST ERROR")
	if want := []string{"probe", "running", m[1], "1"}; rows[0][0] != want[0] || rows[0][2] != want[1] || rows[0][3] != want[2] || rows[0][5] != want[3] {
		t.Fatalf("plugins table after restart: %q, want name, state, pid and restarts %q", rows, want)
	}
	var st struct {
		State    string
		PID      int
		Restarts int
	}
	c.jsonOf(t, &st, "restart", "probe")
	if st.State != "running" || st.PID == 0 || strconv.Itoa(st.PID) == m[1] || st.Restarts != 2 {
		t.Fatalf("--json restart: %+v, want running with a new pid after 2 restarts", st)
	}

	stderr := c.fails(t, 1, "restart", "nosuch")
	if stderr != "routectl: 404 Not Found: no such plugin: \"nosuch\"\n" {
		t.Fatalf("restart of an unknown plugin: %q", stderr)
	}
}

func TestStopStartRescanAndStatus(t *testing.T) {
	t.Parallel()
	c := startGateway(t)
	if out := c.ok(t, "stop", "probe"); out != "stop probe: stopped\n" {
		t.Fatalf("stop: %q", out)
	}
	rows := tableRows(t, c.ok(t, "rescan"), "NAME KIND STATE PID VERSION RESTARTS LAST ERROR")
	if len(rows) != 1 || rows[0][0] != "probe" || rows[0][2] != "stopped" {
		t.Fatalf("rescan after stop: %q (a stopped plugin stays stopped)", rows)
	}
	if out := c.ok(t, "start", "probe"); out != "start probe: running\n" {
		t.Fatalf("start: %q", out)
	}
	out := c.ok(t, "status")
	if !strings.HasPrefix(out, "data-gateway\n") {
		t.Fatalf("status: %q", out)
	}
	rows = tableRows(t, strings.TrimPrefix(out, "data-gateway\n"), "FIGURE PUSHER VALUE")
	if fmt.Sprint(rows) != "[[backlog probe 0] [deadLetters probe 0]]" {
		t.Fatalf("status rows %q", rows)
	}
	if stderr := c.fails(t, 1, "stop", "nosuch"); !strings.Contains(stderr, "404") {
		t.Fatalf("stop of an unknown plugin: %q", stderr)
	}
}

func TestSkippedPluginFilesAreListed(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	must(t, os.WriteFile(filepath.Join(plugins, "pusher-notes"), []byte("not a program"), 0o644))
	var cfg datagateway.Config
	must(t, config.Load(&cfg, []string{"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + plugins}))
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := datagateway.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Wait() })
	c := cli{env: map[string]string{"ROUTECTL_URL": "http://" + svc.Addr()}}
	var out string
	waitFor(t, 10*time.Second, "the skipped file to show", func() bool {
		out = c.ok(t, "plugins")
		return strings.Contains(out, "pusher-notes")
	})
	if rows := tableRows(t, out, "NAME KIND STATE PID VERSION RESTARTS LAST ERROR"); len(rows) != 0 {
		t.Fatalf("plugins: %q", rows)
	}
	_, skipped, _ := strings.Cut(out, "\n\n")
	rows := tableRows(t, skipped, "SKIPPED FILE REASON")
	if len(rows) != 1 || strings.Join(rows[0], " ") != "pusher-notes is not executable" {
		t.Fatalf("skipped rows %q in\n%s", rows, out)
	}
}

func TestDeadLettersAndRetry(t *testing.T) {
	t.Parallel()
	broken := filepath.Join(t.TempDir(), "broken")
	must(t, os.WriteFile(broken, nil, 0o600))
	c := startGateway(t, "PLUGIN_PROBE_PERMANENT_IF_EXISTS="+broken)
	resp, err := http.Post(c.env["ROUTECTL_URL"]+"/data", "application/json",
		strings.NewReader(`{"uuid":"doomed","row":{"index":0,"data":{"a":1}}}`))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /data: %s", resp.Status)
	}

	var dead struct {
		DeadLetters []struct{ ID int64 } `json:"deadletters"`
	}
	waitFor(t, 60*time.Second, "the dead letter", func() bool {
		c.jsonOf(t, &dead, "deadletters")
		return len(dead.DeadLetters) == 1
	})
	id := strconv.FormatInt(dead.DeadLetters[0].ID, 10)

	const header = "ID PUSHER UUID ATTEMPTS LAST ERROR"
	out := c.ok(t, "deadletters")
	rows := tableRows(t, out, header)
	if len(rows) != 1 || strings.Join(rows[0][:4], " ") != id+" probe doomed 1" || !strings.Contains(out, "permanent failure as asked") {
		t.Fatalf("deadletters:\n%s", out)
	}
	if rows := tableRows(t, c.ok(t, "deadletters", "--pusher", "probe", "--uuid", "doomed"), header); len(rows) != 1 {
		t.Fatalf("deadletters filtered by pusher and uuid: %q", rows)
	}
	if rows := tableRows(t, c.ok(t, "deadletters", "--uuid", "other"), header); len(rows) != 0 {
		t.Fatalf("deadletters of another uuid: %q", rows)
	}

	must(t, os.Remove(broken))
	out = c.ok(t, "retry", id)
	if want := "retry of dead letter " + id + " accepted: pusher probe, uuid doomed, now pending\n"; out != want {
		t.Fatalf("retry: %q, want %q", out, want)
	}
	waitFor(t, 60*time.Second, "the retried dead letter to be delivered", func() bool {
		c.jsonOf(t, &dead, "deadletters")
		return len(dead.DeadLetters) == 0
	})
	if stderr := c.fails(t, 1, "retry", id); stderr != "routectl: 404 Not Found: no dead letter with this id\n" {
		t.Fatalf("retry of a delivered task: %q", stderr)
	}
}

func TestTriggers(t *testing.T) {
	t.Parallel()
	c := startTower(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		must(t, os.WriteFile(path, []byte(body), 0o600))
		return path
	}
	const body = `"apiVersion":"OT-2/v1alpha1/Robot1","protocol":"PlateTransfer","plate":{"rows":2,"columns":1},"spec":[{"volume":50},{"volume":100}]`

	out := c.ok(t, "post-trigger", write("transfer.json", "{"+body+"}"))
	m := regexp.MustCompile(`^created trigger (\S+) \((pending|published|unroutable)\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("post-trigger: %q", out)
	}
	generated := m[1]
	named := `{"uuid":"routectl-run-1",` + body + `}`
	if out := c.runStdin(named, "post-trigger", "-"); out.code != 0 || !strings.HasPrefix(out.stdout, "created trigger routectl-run-1 (") {
		t.Fatalf("post-trigger from stdin: %s", out)
	}
	if out := c.runStdin(named, "post-trigger", "-"); out.code != 0 || !strings.HasPrefix(out.stdout, "unchanged: trigger routectl-run-1 ") {
		t.Fatalf("post-trigger of the same content again: %s", out)
	}

	var got struct {
		UUID, APIVersion, Protocol, Source string
		Spec                               []map[string]int
	}
	out = c.ok(t, "trigger", generated)
	must(t, json.Unmarshal([]byte(out), &got))
	if got.UUID != generated || got.APIVersion != "OT-2/v1alpha1/Robot1" || got.Protocol != "PlateTransfer" ||
		got.Source != "http" || len(got.Spec) != 2 || got.Spec[1]["volume"] != 100 {
		t.Fatalf("trigger %s: %+v\n%s", generated, got, out)
	}
	if !strings.Contains(out, "\n  \"protocol\": \"PlateTransfer\"") {
		t.Fatalf("trigger is not pretty JSON:\n%s", out)
	}

	const header = "UUID PROTOCOL SOURCE STATUS CREATED"
	rows := tableRows(t, c.ok(t, "triggers"), header)
	if len(rows) != 2 || rows[0][0] != "routectl-run-1" || rows[1][0] != generated {
		t.Fatalf("triggers, newest first: %q", rows)
	}
	for _, r := range rows {
		if r[1] != "PlateTransfer" || r[2] != "http" || !strings.Contains(" pending published unroutable ", " "+r[3]+" ") {
			t.Fatalf("triggers row %q", r)
		}
		if _, err := time.Parse(time.RFC3339, r[4]); err != nil {
			t.Fatalf("triggers row %q: created: %v", r, err)
		}
	}
	if rows := tableRows(t, c.ok(t, "triggers", "--limit", "1"), header); len(rows) != 1 || rows[0][0] != "routectl-run-1" {
		t.Fatalf("triggers --limit 1: %q", rows)
	}
	if rows := tableRows(t, c.ok(t, "triggers", "--protocol", "Other"), header); len(rows) != 0 {
		t.Fatalf("triggers --protocol Other: %q", rows)
	}
	var list struct{ Triggers []struct{ UUID string } }
	c.jsonOf(t, &list, "triggers", "--source", "http")
	if len(list.Triggers) != 2 {
		t.Fatalf("--json triggers: %+v", list)
	}
	// No queue is bound to the test's exchange: the broker reports both
	// triggers unroutable.
	waitFor(t, 30*time.Second, "the triggers to be found unroutable", func() bool {
		return len(tableRows(t, c.ok(t, "triggers", "--status", "unroutable"), header)) == 2
	})
	if rows := tableRows(t, c.ok(t, "triggers", "--status", "pending"), header); len(rows) != 0 {
		t.Fatalf("triggers --status pending: %q", rows)
	}
	if stderr := c.fails(t, 1, "triggers", "--status", "lost"); stderr != "routectl: 400 Bad Request:\n  status: must be pending, published or unroutable\n" {
		t.Fatalf("triggers --status lost: %q", stderr)
	}
}

func TestPostTriggerRejected(t *testing.T) {
	t.Parallel()
	c := startTower(t)
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       []string // lines of stderr
	}{
		{"invalid fields", `{"apiVersion":"OT-2","protocol":"PlateTransfer","spec":{}}`, []string{
			"routectl: 422 Unprocessable Entity:",
			"  apiVersion: ",
			"  spec: ",
		}},
		{"unknown field", `{"apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"priority":1}`, []string{
			"routectl: 400 Bad Request:",
			"  priority: unknown field",
		}},
		{"malformed JSON", `{"apiVersion":`, []string{
			"routectl: 400 Bad Request:",
			"  body is empty or truncated JSON",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			must(t, os.WriteFile(path, []byte(tt.body), 0o600))
			lines := strings.Split(strings.TrimSuffix(c.fails(t, 1, "post-trigger", path), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("stderr lines %q, want %q", lines, tt.want)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("stderr line %q, want it to start with %q", lines[i], want)
				}
			}
		})
	}

	path := filepath.Join(dir, "first.json")
	must(t, os.WriteFile(path, []byte(`{"uuid":"taken","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1}}`), 0o600))
	c.ok(t, "post-trigger", path)
	stderr := c.runStdin(`{"uuid":"taken","apiVersion":"OT-2/v1alpha1","protocol":"Q","spec":{"a":1}}`, "post-trigger", "-")
	if stderr.code != 1 || !strings.HasPrefix(stderr.stderr, "routectl: 409 Conflict: ") {
		t.Fatalf("post-trigger of other content under a taken uuid: %s", stderr)
	}

	if stderr := c.fails(t, 1, "post-trigger", filepath.Join(dir, "missing.json")); !strings.HasPrefix(stderr, "routectl: read the trigger: ") {
		t.Fatalf("post-trigger of a missing file: %q", stderr)
	}
	if stderr := c.fails(t, 1, "trigger", "nosuch"); stderr != "routectl: 404 Not Found: no trigger with uuid \"nosuch\"\n" {
		t.Fatalf("trigger nosuch: %q", stderr)
	}
	// The control-tower has no dead letters: the error says so.
	want := "routectl: 404 Not Found: " + c.env["ROUTECTL_URL"] + " does not serve GET /deadletters (is --url the right service?)\n"
	if stderr := c.fails(t, 1, "deadletters"); stderr != want {
		t.Fatalf("deadletters on a control-tower: %q, want %q", stderr, want)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	const (
		dataToken  = "data-token-0123456789"
		adminToken = "admin-token-0123456789"
		wrongToken = "wrong-token-0123456789"
	)
	c := startTower(t, "API_TOKENS="+dataToken, "ADMIN_TOKENS="+adminToken)
	noLeak := func(t *testing.T, r result) {
		t.Helper()
		for _, tok := range []string{dataToken, adminToken, wrongToken} {
			if strings.Contains(r.stdout+r.stderr, tok) {
				t.Fatalf("the token %q was printed:\n%s", tok, r)
			}
		}
	}
	tests := []struct {
		name   string
		token  string // in ROUTECTL_TOKEN
		args   []string
		code   int
		stderr string
	}{
		{"no token", "", []string{"plugins"}, 1,
			"routectl: 401 Unauthorized: a bearer token is required (Authorization: Bearer <token>) (set --token or ROUTECTL_TOKEN)\n"},
		{"wrong token", "", []string{"--token", wrongToken, "triggers"}, 1,
			"routectl: 401 Unauthorized: the bearer token is not valid (check --token or ROUTECTL_TOKEN)\n"},
		{"data token on an operator endpoint", dataToken, []string{"restart", "any"}, 1,
			"routectl: 403 Forbidden: this endpoint needs an operator token (ADMIN_TOKENS)\n"},
		{"data token", "", []string{"--token", dataToken, "triggers"}, 0, ""},
		{"admin token", adminToken, []string{"plugins"}, 0, ""},
		{"help with a token", adminToken, []string{"help"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"ROUTECTL_URL": c.env["ROUTECTL_URL"], "ROUTECTL_TOKEN": tt.token}
			r := cli{env: env}.run(tt.args...)
			if r.code != tt.code || r.stderr != tt.stderr {
				t.Fatalf("want exit %d and stderr %q, got %s", tt.code, tt.stderr, r)
			}
			if tt.code == 0 && r.stdout == "" {
				t.Fatalf("no output: %s", r)
			}
			noLeak(t, r)
		})
	}
}
