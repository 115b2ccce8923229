package datagateway_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// Two data-gateways share one PostgreSQL spool; one is SIGKILLed in the
// middle of 1,000 single-row posts spread over both, and restarted. Every
// row that got a 202 from either is delivered; duplicates (pushes whose
// outcome the killed one had not recorded) are counted and reported.
func TestTwoGatewaysOneKilledLoseNothing(t *testing.T) {
	db := testkit.PostgresURL(t)
	plugins := t.TempDir()
	install(t, "pusher-probe", plugins, "pusher-probe")
	outs := []string{t.TempDir(), t.TempDir()}
	vars := make([][]string, 2)
	for i := range vars {
		vars[i] = []string{
			"DATABASE_URL=" + db, "INSTANCE_ID=" + fmt.Sprintf("gateway-%d", i), "DATA_DIR=" + t.TempDir(),
			"PLUGINS_DIR=" + plugins, "PLUGIN_PROBE_OUT=" + outs[i], "PLUGIN_PROBE_DELAY=1ms",
			"RETRY_MIN=20ms", "RETRY_MAX=100ms", "PUSH_TIMEOUT=5s", "PATH=" + os.Getenv("PATH"),
		}
	}
	cmds := make([]func() (int, error), 2)
	bases := make([]string, 2)
	for i := range 2 {
		cmd, base := runBinary(t, vars[i])
		bases[i] = base
		cmds[i] = func() (int, error) { return cmd.Process.Pid, cmd.Process.Signal(syscall.SIGKILL) }
		waitFor(t, 60*time.Second, "the pusher to run on gateway "+base, func() bool {
			r := call(t, http.MethodGet, base+"/plugins/probe", "")
			return strings.Contains(string(r.Body), `"running"`)
		})
	}

	const total = 1000
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		refused  int
		wg       sync.WaitGroup
		killed   = make(chan struct{})
	)
	for c := range 4 {
		wg.Go(func() {
			for i := c; i < total; i += 4 {
				base := bases[i%2]
				body := fmt.Sprintf(`{"uuid":"u%d","row":{"index":%d,"data":{"value":%d}}}`, i%10, i, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/data", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				mu.Lock()
				if err == nil && resp.StatusCode == http.StatusAccepted {
					accepted[fmt.Sprintf("u%d/%d", i%10, i)] = true
				} else {
					refused++ // the killed gateway: not accepted, the client would retry
				}
				n := len(accepted)
				mu.Unlock()
				if err == nil {
					resp.Body.Close()
				}
				if n >= total/2 {
					select {
					case <-killed:
					default:
						close(killed)
					}
				}
			}
		})
	}
	<-killed
	pid, err := cmds[0]()
	must(t, err)
	wg.Wait()

	// The killed one comes back on the same data directory and instance id.
	restarted, _ := runBinary(t, vars[0])
	t.Cleanup(func() { _ = restarted.Process.Kill() })
	delivered := func() (map[string]int, int) {
		got := map[string]int{}
		dups := 0
		for _, out := range outs {
			for _, l := range lines(t, out, "probe") {
				k := rowKey(l)
				if got[k]++; got[k] > 1 {
					dups++
				}
			}
		}
		return got, dups
	}
	waitFor(t, 90*time.Second, "every row that got a 202 to be delivered", func() bool {
		got, _ := delivered()
		for k := range accepted {
			if got[k] == 0 {
				return false
			}
		}
		return true
	})
	got, dups := delivered()
	for k := range got {
		if !accepted[k] {
			// A request the killed gateway committed but could not answer:
			// delivered, though its client saw an error (and would retry).
			t.Logf("delivered without a 202: %s", k)
		}
	}
	if len(accepted) < total/2 {
		t.Fatalf("only %d rows accepted", len(accepted))
	}
	t.Logf("%d posts: %d got a 202 (%d refused or cut by the SIGKILL of pid %d); %d distinct rows delivered, %d duplicate deliveries",
		total, len(accepted), refused, pid, len(got), dups)
}
