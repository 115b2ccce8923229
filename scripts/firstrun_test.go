// Tests of what `make` runs first: the broker step before the services.
package scripts_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// root is the repository's root, where the Makefile is.
func root(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestMakeRunsTheBrokerStepBeforeTheServices reads what `make run` (the
// default goal) would run: RabbitMQ is brought up as `make test` does,
// without failing the make, before scripts/run starts the services.
func TestMakeRunsTheBrokerStepBeforeTheServices(t *testing.T) {
	for _, goal := range [][]string{{"-n"}, {"-n", "run"}} {
		cmd := exec.Command("make", append([]string{"--no-print-directory"}, goal...)...)
		cmd.Dir = root(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", strings.Join(goal, " "), err, out)
		}
		lines := strings.Split(string(out), "\n")
		broker := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "scripts/services up rabbitmq ||") })
		run := slices.Index(lines, "scripts/run")
		switch {
		case broker < 0:
			t.Fatalf("make %s does not run `scripts/services up rabbitmq || ...`:\n%s", strings.Join(goal, " "), out)
		case run < 0:
			t.Fatalf("make %s does not run scripts/run:\n%s", strings.Join(goal, " "), out)
		case broker > run:
			t.Fatalf("make %s runs scripts/run before the broker step:\n%s", strings.Join(goal, " "), out)
		}
	}
}

func brokerAddr() string {
	if a := os.Getenv("TEST_RABBITMQ_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:5672"
}

func TestServicesUpRabbitMQSucceedsWhenTheBrokerIsReachable(t *testing.T) {
	addr := brokerAddr()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable at %s (run scripts/services up): %v", addr, err)
	}
	c.Close()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "scripts/services", "up", "rabbitmq")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "RABBITMQ_HOST="+host, "RABBITMQ_PORT="+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/services up rabbitmq: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rabbitmq: reachable at "+host+":"+port) {
		t.Errorf("scripts/services up rabbitmq does not say the broker is reachable:\n%s", out)
	}
	for _, other := range []string{"postgresql", "chromium", "python"} {
		if strings.Contains(string(out), other+":") {
			t.Errorf("scripts/services up rabbitmq also saw to %s:\n%s", other, out)
		}
	}
}

// TestMakeRunsOnWhenTheBrokerCannotBeStarted: a broker that cannot be
// reached (here a closed port on 127.0.0.2, an address the script only
// checks and never starts a broker on) is reported with the reason, and
// the make goes on.
func TestMakeRunsOnWhenTheBrokerCannotBeStarted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	cmd := exec.Command("make", "--no-print-directory", "broker")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "RABBITMQ_HOST=127.0.0.2", "RABBITMQ_PORT="+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make broker failed (it must not fail the make): %v\n%s", err, out)
	}
	for _, want := range []string{
		"rabbitmq: 127.0.0.2:" + port + " is not reachable",
		"triggers are stored and stay pending",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make broker does not say %q:\n%s", want, out)
		}
	}
}
