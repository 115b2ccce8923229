package clientkit_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// python is the system interpreter, with Debian's python3-pika.
const python = "/usr/bin/python3"

// A relay written with the Python kit (testdata/relay.py) against the real
// services: each ChiBio trigger reaches its handler once, also across a
// cut of its broker connection while it handles one (the redelivery is
// acknowledged as a duplicate), and the rows it posts reach pusher-jsonl
// once each.
func TestPythonRelay(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import pika").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import pika (%v: %s): install python3-pika (scripts/services up does)", python, err, out)
	}
	root, err := filepath.Abs("../..")
	must(t, err)
	exchange, queue := testkit.RandomName("test-triggers-"), testkit.RandomName("test-py-relay-")
	deleteQueues(t, queue, exchange)
	tower := startTowerBinary(t, exchange)
	g := newGateway(t, false, "CONTROL_TOWER_URL="+tower)
	g.start()
	rabbit := newProxy(t, brokerAddr())
	hold := filepath.Join(t.TempDir(), "release")

	var lg logs
	startProgram(t, &lg, python, []string{filepath.Join(root, "host/clientkit/testdata/relay.py")},
		"PYTHONPATH="+filepath.Join(root, "sdk/python"),
		"AMQP_URL=amqp://guest:guest@"+rabbit.addr+"/", "AMQP_EXCHANGE="+exchange, "QUEUE="+queue,
		"GATEWAY_URL="+g.url(), "HOLD_FILE="+hold)
	waitFor(t, 20*time.Second, "the relay to consume", func() bool { return lg.count("consuming ChiBio.v1alpha1.#") > 0 })

	held := postTrigger(t, tower, `{"apiVersion":"ChiBio/v1alpha1/ChiBio1","protocol":"Hold","spec":{"samples":2,"od":0.1}}`)
	waitFor(t, 15*time.Second, "the relay to handle the first trigger", func() bool { return lg.count("handling "+held) == 1 })
	rabbit.Cut()
	must(t, os.WriteFile(hold, nil, 0o600))
	grow := postTrigger(t, tower, `{"apiVersion":"ChiBio/v1alpha1","protocol":"Grow","spec":{"samples":3,"od":0.5}}`)
	ignored := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"PlateTransfer","spec":{"volume":1}}`)

	waitFor(t, 30*time.Second, "both ChiBio triggers handled", func() bool { return lg.count("handled "+grow) == 1 && lg.count("handled "+held) == 1 })
	waitFor(t, 15*time.Second, "the held trigger's redelivery acknowledged as a duplicate", func() bool {
		return lg.count("is a duplicate of a handled one") >= 1
	})
	waitFor(t, 15*time.Second, "five rows at the pusher", func() bool { return len(readRows(t, g.out)) >= 5 })
	time.Sleep(300 * time.Millisecond)
	rows := readRows(t, g.out)
	perUUID := map[string][]string{}
	for _, r := range rows {
		perUUID[r.UUID] = append(perUUID[r.UUID], string(r.Data))
	}
	want := map[string]string{
		held: `{"sample":0,"odMeasured":0.1} {"sample":1,"odMeasured":0.11}`,
		grow: `{"sample":0,"odMeasured":0.5} {"sample":1,"odMeasured":0.51} {"sample":2,"odMeasured":0.52}`,
	}
	for u, w := range want {
		if got := strings.Join(perUUID[u], " "); got != w {
			t.Errorf("rows of %s: %s, want %s", u, got, w)
		}
	}
	if len(rows) != 5 || perUUID[ignored] != nil {
		t.Fatalf("rows: %v", perUUID)
	}
	for _, u := range []string{held, grow} {
		if n := lg.count("handling " + u); n != 1 {
			t.Errorf("trigger %s handled %d times", u, n)
		}
	}
	if n := lg.count("consuming ChiBio"); n < 2 {
		t.Errorf("the relay consumed on %d connections, want a reconnect", n)
	}
	if t.Failed() {
		fmt.Fprintln(os.Stderr, strings.Join(lg.lines, ""))
	}
}
