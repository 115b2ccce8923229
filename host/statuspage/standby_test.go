package statuspage_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
)

// Two control-towers on one PostgreSQL schema with the same watcher: the
// page of the one standing by shows standby and the holder (an instance
// id with markup in it, shown as text), and its Restart button restarts
// the holder's process.
func TestControlTowerPageShowsStandbyAndTheHolder(t *testing.T) {
	browser := chromium(t)
	db := testkit.PostgresURL(t)
	const holderID = `tower-a <i>lab</i>`
	const amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	exchange := testkit.RandomName("statuspage-test-")
	t.Cleanup(func() {
		if conn, err := amqp.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_ = ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
	start := func(id string) *controltower.Service {
		plugins := t.TempDir()
		buildProbe(t, plugins, "watcher-probe")
		vars := []string{
			"SERVER_PORT=0", "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + plugins,
			"ADMIN_TOKENS=" + adminToken, "DATABASE_URL=" + db, "INSTANCE_ID=" + id,
			"AMQP_URL=" + amqpURL, "AMQP_EXCHANGE=" + exchange, "WATCHER_LEASE_TTL=1s",
			"PATH=" + os.Getenv("PATH"),
		}
		var cfg controltower.Config
		testkit.Must(t, config.Load(&cfg, vars))
		ctx, cancel := context.WithCancel(context.Background())
		svc, err := controltower.Start(ctx, cfg, hclog.NewNullLogger())
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); _ = svc.Wait() })
		return svc
	}
	holder := start(holderID)
	probe := func(svc *controltower.Service) pluginmgr.Status {
		st, _ := svc.Plugins().Get("probe")
		return st
	}
	waitFor(t, 60*time.Second, "the first tower to run the watcher", func() bool { return probe(holder).State == pluginmgr.StateRunning })
	standby := start("tower-b")
	waitFor(t, 60*time.Second, "the second tower to stand by", func() bool {
		return probe(standby).State == pluginmgr.StateStandby && probe(standby).Holder == holderID
	})
	first := probe(holder)

	runCtx := browse(t, browser)
	cell := `tr[data-plugin="probe"] td.state`
	err := chromedp.Do(runCtx,
		signIn(standby.URL()+"/"),
		until(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, cell, "standby on "+holderID), 20*time.Second),
	)
	if err != nil {
		saveScreenshot(t, runCtx, "statuspage-standby-failure.png")
		t.Fatalf("the standby tower's page does not show standby and the holder: %v", err)
	}
	markup, err := chromedp.Run(runCtx, chromedp.Evaluate[int](`document.querySelectorAll("#plugins i").length`))
	if err != nil || markup != 0 {
		t.Fatalf("the holder's id was read as markup: %d <i> elements (%v)", markup, err)
	}
	saveScreenshot(t, runCtx, "statuspage-standby.png")

	err = chromedp.Do(runCtx, chromedp.Click(chromedp.CSS(`tr[data-plugin="probe"] button[data-action="restart"]`)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the holder to restart the watcher", func() bool {
		st := probe(holder)
		return st.State == pluginmgr.StateRunning && st.PID != first.PID
	})
	if st := probe(standby); st.State != pluginmgr.StateStandby || st.PID != 0 {
		t.Fatalf("the standby tower after the restart: %+v", st)
	}
}
