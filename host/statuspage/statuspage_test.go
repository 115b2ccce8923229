package statuspage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/service"
)

var waitFor = testkit.WaitFor

const adminToken = "admin-token-for-the-page-0123"

// chromium finds the browser: $CHROMIUM, else chromium or
// chromium-browser on PATH. `make test` installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install it (scripts/services up does, as root on Debian: apt-get install chromium) or set CHROMIUM")
	return ""
}

// artifact is where a screenshot is kept after the test: $TEST_ARTIFACTS,
// else test-artifacts/ at the repository root (ignored by git).
func artifact(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join(dir, name))
	return abs
}

func buildProbe(t *testing.T, dir, file string) {
	t.Helper()
	_, err := testkit.Build("github.com/routinglayer/routing/host/pluginmgr/testdata/probe", dir, file)
	testkit.Must(t, err)
}

func TestStatusPageShowsACrashedPluginAndRestartsIt(t *testing.T) {
	browser := chromium(t)
	plugins, crashFlag := t.TempDir(), filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(crashFlag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	buildProbe(t, plugins, "pusher-crashy")
	buildProbe(t, plugins, "pusher-steady")

	vars := []string{
		"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + plugins,
		"ADMIN_TOKENS=" + adminToken,
		"PLUGINS_MAX_FAST_CRASHES=2", "PLUGINS_MIN_BACKOFF=50ms",
		"PLUGIN_CRASHY_CRASH_IF_EXISTS=" + crashFlag,
		"PATH=" + os.Getenv("PATH"),
	}
	var cfg datagateway.Config
	if err := config.Load(&cfg, vars); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	svc, err := datagateway.Start(ctx, cfg, hclog.New(&hclog.LoggerOptions{Output: logOut}))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Wait() })

	state := func(name string) pluginmgr.Status {
		st, _ := svc.Plugins().Get(name)
		return st
	}
	waitFor(t, 60*time.Second, "crashy to fail and steady to run", func() bool {
		return state("crashy").State == pluginmgr.StateFailed && state("steady").State == pluginmgr.StateRunning
	})
	steadyPID := state("steady").PID

	runCtx := browse(t, browser)

	crashyState := `tr[data-plugin="crashy"] td.state`
	stateIs := func(want string) string {
		return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, crashyState, want)
	}
	screenshot := func(name string) { t.Helper(); saveScreenshot(t, runCtx, name) }

	// Without a token the page asks for one; with it, it shows crashy failed.
	err = chromedp.Do(runCtx, signIn(svc.URL()+"/"), until(stateIs("failed"), 20*time.Second))
	if err != nil {
		screenshot("statuspage-failure.png")
		t.Fatalf("the page does not show crashy failed: %v", err)
	}
	lastError, err := chromedp.Run(runCtx, chromedp.Text(chromedp.CSS(`tr[data-plugin="crashy"] td.err`)))
	if err != nil || lastError == "" {
		t.Errorf("the crashed plugin's last error is not shown (%q, %v)", lastError, err)
	}
	screenshot("statuspage-crashed.png")

	// The cause of the crash is gone; the operator presses Restart.
	if err := os.Remove(crashFlag); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(runCtx,
		chromedp.Click(chromedp.CSS(`tr[data-plugin="crashy"] button[data-action="restart"]`)),
		until(stateIs("running"), 30*time.Second),
	)
	if err != nil {
		screenshot("statuspage-failure.png")
		t.Fatalf("restarting from the page: %v", err)
	}
	screenshot("statuspage-restarted.png")
	if st := state("crashy"); st.State != pluginmgr.StateRunning || st.PID == 0 {
		t.Fatalf("the service does not show crashy running after the click: %+v", st)
	}
	if st := state("steady"); st.PID != steadyPID || st.Restarts != 0 {
		t.Errorf("steady was disturbed: pid %d -> %d, restarts %d", steadyPID, st.PID, st.Restarts)
	}
}

// browse starts a headless Chromium for the test and returns a context
// to drive one tab of it.
func browse(t *testing.T, browser string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(append(chromedp.DefaultExecAllocatorOptions[:], extra...),
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	runCtx, cancelRun := context.WithTimeout(browserCtx, 90*time.Second)
	t.Cleanup(func() { cancelRun(); cancelBrowser(); cancelAlloc() })
	return runCtx
}

// until polls js in the page until it is true or timeout passes.
func until(js string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](js, chromedp.WithPollingTimeout(timeout))
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, tg)
		return chromedp.Void{}, err
	}
}

// saveScreenshot keeps a PNG of the whole page as a test artifact.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifact(t, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// signIn enters the operator token on the page at url.
func signIn(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(url),
		until(`document.getElementById("banner").textContent.includes("token")`, 20*time.Second),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Click(chromedp.CSS(`#auth button[type="submit"]`)),
	)
}

func TestControlTowerPageShowsRecentTriggersAndTheBroker(t *testing.T) {
	browser := chromium(t)
	svc := startTower(t, "ADMIN_TOKENS="+adminToken)

	req, _ := http.NewRequest(http.MethodPost, svc.URL()+"/triggers",
		strings.NewReader(`{"uuid":"page0123456789ab","apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":150}}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := testkit.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /triggers: %s", resp.Status)
	}

	runCtx := browse(t, browser)
	row := `tr[data-uuid="page0123456789ab"]`
	err = chromedp.Do(runCtx,
		signIn(svc.URL()+"/"),
		until(fmt.Sprintf(`!!document.querySelector(%q)`, row), 20*time.Second),
		// Published (unroutable: no queue is bound) once the broker confirms.
		until(fmt.Sprintf(`document.querySelector(%q).textContent.includes("unroutable")`, row+" td.state"), 30*time.Second),
		until(`document.getElementById("figures").textContent.includes("connected")`, 20*time.Second),
	)
	if err != nil {
		saveScreenshot(t, runCtx, "statuspage-tower-failure.png")
		t.Fatalf("the control-tower page: %v", err)
	}
	text, err := chromedp.Run(runCtx, chromedp.Text(chromedp.CSS(row)))
	if err != nil || !strings.Contains(text, "OT-2/v1alpha1") || !strings.Contains(text, "SimpleDilution") || !strings.Contains(text, "http") {
		t.Fatalf("trigger row %q (%v)", text, err)
	}
	saveScreenshot(t, runCtx, "statuspage-control-tower.png")
}

// startTower runs a control-tower in the test process on the local
// RabbitMQ, with an exchange of its own (deleted when the test ends) and
// the extra variables, until the test ends.
func startTower(t *testing.T, extra ...string) *service.Service {
	t.Helper()
	const amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	exchange := fmt.Sprintf("statuspage-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if conn, err := amqp.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
	vars := append([]string{"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + t.TempDir(),
		"AMQP_URL=" + amqpURL, "AMQP_EXCHANGE=" + exchange}, extra...)
	var cfg controltower.Config
	if err := config.Load(&cfg, vars); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := controltower.Start(ctx, cfg, hclog.NewNullLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Wait() })
	return svc
}
