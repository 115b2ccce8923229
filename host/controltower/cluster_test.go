package controltower_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
)

// Three control-tower binaries on one PostgreSQL schema and one exchange,
// with watcher-filedrop installed on each; one of them reaches RabbitMQ
// through an AMQP_URL whose first node is unreachable. Each trigger is
// published once; the watcher runs on exactly one instance, and another
// takes it over, with its State, when that one is SIGKILLed.
func TestThreeControlTowersPublishOnceAndFailOver(t *testing.T) {
	bin := buildBinary(t, "github.com/routinglayer/routing/host/cmd/control-tower", t.TempDir(), "control-tower")
	plugins, inbox := t.TempDir(), t.TempDir()
	buildBinary(t, "github.com/routinglayer/routing/examples/cmd/watcher-filedrop", plugins, "watcher-filedrop")
	db := testkit.PostgresURL(t)
	exchange := randomName("test-cluster-")
	c := consume(t, exchange, "#")
	broker := "amqp://guest:guest@" + brokerAddr() + "/"

	type instance struct {
		id   string
		cmd  *exec.Cmd
		base string
	}
	towers := make([]*instance, 3)
	for i := range towers {
		amqpURL := broker
		if i == 2 {
			amqpURL = "amqp://guest:guest@127.0.0.1:1/," + broker // the first node never answers
		}
		id := fmt.Sprintf("tower-%d", i)
		cmd, base := runBinary(t, bin, []string{
			"DATABASE_URL=" + db, "INSTANCE_ID=" + id, "DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + plugins,
			"AMQP_URL=" + amqpURL, "AMQP_EXCHANGE=" + exchange,
			"PLUGIN_FILEDROP_DIR=" + inbox, "PLUGIN_FILEDROP_SCAN_INTERVAL=100ms",
		})
		towers[i] = &instance{id: id, cmd: cmd, base: base}
	}

	// 600 triggers posted round-robin, 6 at a time.
	const n = 600
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
	)
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n; i += 6 {
				r := call(t, http.MethodPost, towers[i%3].base+"/triggers",
					fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1","protocol":"Cluster","spec":{"n":%d}}`, i))
				if r.Status != http.StatusCreated {
					t.Errorf("POST to %s: %d %s", towers[i%3].id, r.Status, r.Body)
					return
				}
				var s stored
				r.JSON(t, &s)
				mu.Lock()
				accepted[s.UUID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitFor(t, 60*time.Second, "every trigger published and settled", func() bool {
		var list struct{ Triggers []stored }
		call(t, http.MethodGet, towers[0].base+"/triggers?status=pending&limit=1", nil).JSON(t, &list)
		return len(list.Triggers) == 0 && len(c.ids()) >= n
	})
	ids := c.ids()
	dups := len(c.received()) - len(ids)
	t.Logf("%d triggers posted round-robin to 3 control-towers: %d messages, %d distinct ids, %d duplicates",
		n, len(c.received()), len(ids), dups)
	if len(ids) != n || dups != 0 {
		t.Fatalf("%d distinct ids and %d duplicates for %d triggers", len(ids), dups, n)
	}
	for id := range ids {
		if !accepted[id] {
			t.Fatalf("message %s was never posted", id)
		}
	}

	// The watcher runs on exactly one instance; the others stand by.
	watcherOn := func(live []*instance) (holder *instance, standby int) {
		for _, in := range live {
			var st pluginmgr.Status
			if call(t, http.MethodGet, in.base+"/plugins/filedrop", nil).JSON(t, &st); st.State == pluginmgr.StateRunning {
				if holder != nil {
					t.Fatalf("filedrop runs on %s and %s", holder.id, in.id)
				}
				holder = in
			} else if st.State == pluginmgr.StateStandby {
				standby++
			}
		}
		return holder, standby
	}
	var holder *instance
	waitFor(t, 30*time.Second, "filedrop running on one instance, standby on two", func() bool {
		h, standby := watcherOn(towers)
		holder = h
		return h != nil && standby == 2
	})
	for _, in := range towers {
		if in == holder {
			continue
		}
		var st pluginmgr.Status
		call(t, http.MethodGet, in.base+"/plugins/filedrop", nil).JSON(t, &st)
		if st.Holder != holder.id {
			t.Fatalf("%s shows the holder as %q, want %q", in.id, st.Holder, holder.id)
		}
	}

	fromWatcher := func() map[string]int {
		out := map[string]int{}
		for _, d := range c.received() {
			if d.Headers["source"] == "watcher:filedrop" {
				var tr struct{ Spec struct{ File string } }
				_ = json.Unmarshal(d.Body, &tr)
				out[tr.Spec.File]++
			}
		}
		return out
	}
	drop := func(name string) {
		tmp := filepath.Join(inbox, "."+name+".tmp")
		must(t, os.WriteFile(tmp, fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1","protocol":"Drop","spec":{"file":%q}}`, name), 0o600))
		must(t, os.Rename(tmp, filepath.Join(inbox, name)))
	}
	drop("before.json")
	waitFor(t, 30*time.Second, "the file dropped before the kill to be published", func() bool { return fromWatcher()["before.json"] == 1 })

	must(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	_ = holder.cmd.Wait()
	killed := time.Now()
	drop("after.json")
	var survivors []*instance
	for _, in := range towers {
		if in != holder {
			survivors = append(survivors, in)
		}
	}
	var next *instance
	waitFor(t, 20*time.Second, "a survivor to take the watcher over", func() bool {
		next, _ = watcherOn(survivors)
		return next != nil
	})
	takeover := time.Since(killed)
	waitFor(t, 30*time.Second, "the file dropped after the kill to be published", func() bool { return fromWatcher()["after.json"] >= 1 })
	// The new holder has scanned the inbox by now: the file handled by the
	// killed holder is not emitted again (its State, or the idempotency
	// key, says so).
	waitFor(t, 10*time.Second, "the new holder to scan", func() bool {
		var st pluginmgr.Status
		call(t, http.MethodGet, next.base+"/plugins/filedrop", nil).JSON(t, &st)
		return st.State == pluginmgr.StateRunning && st.StartedAt != nil && time.Since(*st.StartedAt) > time.Second
	})
	if got := fromWatcher(); got["before.json"] != 1 || got["after.json"] != 1 {
		t.Fatalf("messages per file after the takeover: %v, want one each", got)
	}
	t.Logf("SIGKILL of %s: %s took filedrop over in %s; one message per file (before and after the kill)",
		holder.id, next.id, takeover.Round(100*time.Millisecond))
}
