// Command bench measures the routing layer on this machine and writes the
// figures, each beside a baseline measured in the same run, as a Markdown
// table to stdout and to scripts/bench/RESULTS.md.
//
//	go run ./scripts/bench [-runs 3] [-duration 10s] [-out scripts/bench/RESULTS.md] [-profile dir] [-postgres URL] [-only gateway|tower]
//
// It builds the services, pusher-jsonl, the benchmark's watcher
// (watcher-burst) and the peer, Benthos (scripts/bench/benthos, its own
// module), runs them as child processes with embedded SQLite in a
// temporary directory (JSON-lines files on tmpfs), and needs RabbitMQ
// (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/). Run it from the
// repository root; `make bench` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

type options struct {
	runs     int
	duration time.Duration
	conns    int
	triggers int
	out      string
	amqpURL  string
	profile  string
	postgres string
	// only limits a run to "gateway" or "tower" ("": both).
	only string
	// databaseURL is the current run's DATABASE_URL ("" for SQLite).
	databaseURL string
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "runs of every measurement (min/median/max are reported)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load")
	flag.IntVar(&o.conns, "conns", 32, "concurrent HTTP connections")
	flag.IntVar(&o.triggers, "triggers", 5000, "triggers per publish measurement")
	flag.StringVar(&o.out, "out", "scripts/bench/RESULTS.md", "Markdown file to write (empty: stdout only)")
	flag.StringVar(&o.profile, "profile", "", "directory to save CPU and heap profiles of the services under load (go tool pprof)")
	flag.StringVar(&o.postgres, "postgres", "", "run the services on this PostgreSQL database (a fresh schema per run) instead of SQLite")
	flag.StringVar(&o.only, "only", "", `measure only the "gateway" or the "tower" (while tuning)`)
	flag.Parse()
	o.amqpURL = os.Getenv("AMQP_URL")
	if o.amqpURL == "" {
		o.amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if _, err := os.Stat("go.work"); err != nil {
		return fmt.Errorf("run from the repository root (go.work not found)")
	}
	work, err := os.MkdirTemp("", "routing-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Fprintln(os.Stderr, "bench: building")
	bins, err := build(filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	res := results{}
	ctx := context.Background()
	for i := range o.runs {
		fmt.Fprintf(os.Stderr, "bench: run %d of %d\n", i+1, o.runs)
		dir := filepath.Join(work, fmt.Sprintf("run%d", i))
		db, dropSchema, err := database(ctx, o.postgres, i)
		if err != nil {
			return err
		}
		o.databaseURL = db
		if o.only != "tower" {
			if err = gatewayRun(ctx, o, bins, dir, res); err != nil {
				err = fmt.Errorf("data-gateway, run %d: %w", i+1, err)
			}
		}
		if err == nil && o.only != "gateway" {
			if err = towerRun(ctx, o, bins, dir, i, res); err != nil {
				err = fmt.Errorf("control-tower, run %d: %w", i+1, err)
			}
		}
		dropSchema()
		if err != nil {
			return err
		}
	}
	report := res.markdown(o, machine())
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", o.out)
	}
	return nil
}

func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range splitLines(string(data)) {
			if k, v, ok := cut(line, ":"); ok && k == "model name" {
				cpu = v
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
