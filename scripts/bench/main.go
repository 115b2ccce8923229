// Command bench measures the routing layer on this machine and writes the
// figures, each beside a baseline measured in the same run, as a Markdown
// table to stdout and to scripts/bench/RESULTS.md.
//
//	go run ./scripts/bench [-runs 3] [-duration 10s] [-out scripts/bench/RESULTS.md] [-profile dir] [-stores sqlite,postgres] [-postgres URL] [-only gateway|tower]
//
// It builds the services, pusher-jsonl, the benchmark's watcher
// (watcher-burst) and the peer, Benthos (scripts/bench/benthos, its own
// module), runs them as child processes on embedded SQLite in a temporary
// directory, then on PostgreSQL (a fresh schema per run; -stores picks),
// with the JSON-lines files on tmpfs. It needs RabbitMQ (AMQP_URL, default
// amqp://guest:guest@127.0.0.1:5672/) and, for the postgres runs,
// PostgreSQL (-postgres). Run it from the repository root; `make bench`
// does, after scripts/services up.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
	stores   string
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
	flag.StringVar(&o.stores, "stores", "sqlite,postgres", "the stores to run the services on, in order: sqlite, postgres (a fresh schema per run in the -postgres database)")
	flag.StringVar(&o.postgres, "postgres", defaultPostgres(), "the PostgreSQL database of the postgres runs ($TEST_DATABASE_URL by default)")
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
	ctx := context.Background()
	var stores []storeResults
	for _, store := range strings.Split(o.stores, ",") {
		res := results{}
		switch store = strings.TrimSpace(store); store {
		case "sqlite", "postgres":
		default:
			return fmt.Errorf("-stores: unknown store %q (sqlite, postgres)", store)
		}
		for i := range o.runs {
			fmt.Fprintf(os.Stderr, "bench: %s, run %d of %d\n", store, i+1, o.runs)
			if err := oneRun(ctx, o, bins, filepath.Join(work, fmt.Sprintf("%s-run%d", store, i)), store, i, res); err != nil {
				return fmt.Errorf("%s: %w", store, err)
			}
		}
		stores = append(stores, storeResults{store: store, res: res})
	}
	report := markdown(o, machine(), stores)
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", o.out)
	}
	return nil
}

// oneRun measures the services once on store, into res.
func oneRun(ctx context.Context, o options, bins map[string]string, dir, store string, i int, res results) error {
	pg := ""
	if store == "postgres" {
		pg = o.postgres
	}
	db, dropSchema, err := database(ctx, pg, i)
	if err != nil {
		return err
	}
	defer dropSchema()
	o.databaseURL = db
	if o.only != "tower" {
		if err := gatewayRun(ctx, o, bins, dir, res); err != nil {
			return fmt.Errorf("data-gateway, run %d: %w", i+1, err)
		}
	}
	if o.only != "gateway" {
		if err := towerRun(ctx, o, bins, dir, i, res); err != nil {
			return fmt.Errorf("control-tower, run %d: %w", i+1, err)
		}
	}
	return nil
}

// defaultPostgres is the database of the postgres runs: $TEST_DATABASE_URL,
// else the one scripts/services brings up.
func defaultPostgres() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
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
