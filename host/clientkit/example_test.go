package clientkit_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// startTowerBinary runs the control-tower binary on its own exchange.
func startTowerBinary(t *testing.T, exchange string) string {
	t.Helper()
	_, base := testkit.RunBinary(t, bins["control-tower"], []string{
		"DATA_DIR=" + t.TempDir(), "PLUGINS_DIR=" + t.TempDir(),
		"AMQP_URL=" + brokerURL(), "AMQP_EXCHANGE=" + exchange,
	})
	return base
}

// startProgram runs a service-layer program with env until the test
// ends (SIGTERM, then SIGKILL after 10 s); its stderr is collected in lg.
func startProgram(t *testing.T, lg *logs, name string, args []string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	var out io.Writer = lg
	if testing.Verbose() {
		out = io.MultiWriter(lg, os.Stderr)
	}
	cmd.Stderr, cmd.Stdout = out, out
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 10s of SIGTERM", name)
		}
	})
	return cmd
}

// The example service-layer program closes the loop: a trigger posted to
// the control-tower reaches robot-sim through RabbitMQ, and its rows,
// one per well, reach pusher-jsonl's files through the data-gateway.
func TestExampleRobotLoop(t *testing.T) {
	exchange, queue := testkit.RandomName("test-triggers-"), testkit.RandomName("test-robot-sim-")
	deleteQueues(t, queue, exchange)
	tower := startTowerBinary(t, exchange)
	g := newGateway(t, false, "CONTROL_TOWER_URL="+tower)
	g.start()
	var lg logs
	startProgram(t, &lg, bins["robot-sim"], nil,
		"AMQP_URL="+brokerURL(), "AMQP_EXCHANGE="+exchange, "ROBOT_QUEUE="+queue,
		"DATA_GATEWAY_URL="+g.url(), "ROBOT_STEP_DELAY=1ms")
	waitFor(t, 20*time.Second, "robot-sim to consume", func() bool { return lg.count("msg=consuming") > 0 })

	var spec []string
	for i := range 96 {
		spec = append(spec, fmt.Sprintf(`{"volume":%d}`, 10+i))
	}
	plate := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1/Robot1","protocol":"PlateTransfer","plate":{"rows":8,"columns":12},"spec":[`+strings.Join(spec, ",")+`]}`)
	single := postTrigger(t, tower, `{"apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":150}}`)
	other := postTrigger(t, tower, `{"apiVersion":"ChiBio/v1alpha1","protocol":"Grow","spec":{"od":0.5}}`)

	waitFor(t, 30*time.Second, "the rows of both OT-2 triggers at the pusher", func() bool { return len(readRows(t, g.out)) >= 97 })
	time.Sleep(300 * time.Millisecond)
	rows := readRows(t, g.out)
	counts := countRows(rows)
	for i := range 96 {
		if counts[fmt.Sprintf("%s/%d", plate, i)] != 1 {
			t.Fatalf("well %d of %s: %d rows", i, plate, counts[fmt.Sprintf("%s/%d", plate, i)])
		}
	}
	if counts[single+"/-"] != 1 || len(rows) != 97 {
		t.Fatalf("rows %v", counts)
	}
	for _, r := range rows {
		if r.UUID == plate && *r.Index == 95 && string(r.Data) != `{"completed":true,"protocol":"PlateTransfer","volume":105,"well":"H12"}` {
			t.Fatalf("well H12: %s", r.Data)
		}
		if r.UUID == other {
			t.Fatal("a ChiBio trigger reached the OT-2 robot")
		}
	}
	if lg.count("trigger received") != 2 || lg.count("rows posted") != 2 {
		t.Fatalf("robot-sim's log:\n%s", strings.Join(lg.lines, ""))
	}
}
