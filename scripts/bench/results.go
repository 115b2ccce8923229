package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// results holds every figure of every run, by key.
type results map[string][]float64

func (r results) add(key string, v float64) { r[key] = append(r[key], v) }

// spread is min, median and max.
type spread struct{ min, med, max float64 }

func spreadOf(vs []float64) spread {
	if len(vs) == 0 {
		return spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return spread{s[0], s[len(s)/2], s[len(s)-1]}
}

// ratios are value/baseline per run.
func (r results) ratios(key, base string) []float64 {
	var out []float64
	for i := range min(len(r[key]), len(r[base])) {
		if r[base][i] > 0 {
			out = append(out, r[key][i]/r[base][i])
		}
	}
	return out
}

// line is one row of the report.
type line struct {
	what, unit string
	key, base  string // base: the baseline's key, if any
	target     string
	// met says whether a median meets the target (nil: no target).
	met func(value, ratio float64) bool
}

var report = []line{
	{"data-gateway intake: POST /data/batch, 100 rows, 32 connections, accepted and durable", "rows/s", "intake", "intake.base",
		">= 0.5 of baseline", func(_, r float64) bool { return r >= 0.5 }},
	{"  latency p50", "ms", "intake.p50", "intake.base.p50", "", nil},
	{"  latency p99", "ms", "intake.p99", "intake.base.p99", "<= 1.5x baseline", func(_, r float64) bool { return r <= 1.5 }},
	{"  requests failed (not 2xx, not 429)", "count", "intake.failed", "", "0", func(v, _ float64) bool { return v == 0 }},
	{"  requests refused: 429, delivery behind (MAX_BACKLOG_AGE=" + maxBacklogAge + ")", "count", "intake.refused", "", "", nil},
	{"peer (Benthos) intake, same load", "rows/s", "peer.intake", "intake.base", "", nil},
	{"  peer latency p99", "ms", "peer.p99", "intake.base.p99", "", nil},
	{"end to end: rows in pusher-jsonl's files over load + drain", "rows/s", "delivery", "peer", ">= 2.0x peer", func(_, r float64) bool { return r >= 2.0 }},
	{"  delivery lag: load stop to last row written", "s", "delivery.lag", "", "< 1 s", func(v, _ float64) bool { return v < 1 }},
	{"  peer end to end (Benthos, same load, rows in its files)", "rows/s", "peer", "", "", nil},
	{"  peer lag", "s", "peer.lag", "", "", nil},
	{"  rows per Push", "rows", "store.rows_per_push", "", "", nil},
	{"  store write transactions per Push (intake's included)", "count", "store.tx_per_push", "", "", nil},
	{"  store writes per Push (intake's included)", "count", "store.writes_per_push", "", "", nil},
	{"  SQLite writer busy (share of load + drain)", "ratio", "store.writer_busy", "", "", nil},
	{"control-tower: watcher Emit to broker confirm", "triggers/s", "publish", "publish.base",
		">= 0.5 of baseline", func(_, r float64) bool { return r >= 0.5 }},
	{"  watcher Emit to stored (the burst's intake alone)", "triggers/s", "publish.stored", "publish.base", "", nil},
	{"  store write transactions per trigger", "count", "publish.tx", "", "", nil},
	{"  SQLite writer busy (share of the burst)", "ratio", "publish.writer_busy", "", "", nil},
	{"  control-tower CPU per trigger (user + system, publishing included)", "us", "publish.cpu", "", "", nil},
	{"control-tower: POST /triggers, 32 connections, stored durably (201)", "requests/s", "post", "post.base", ">= 0.5 of baseline", func(_, r float64) bool { return r >= 0.5 }},
	{"  latency p99", "ms", "post.p99", "", "", nil},
	{"  control-tower CPU per request (user + system, publishing included)", "us", "post.cpu", "", "", nil},
	{"plugin restart: kill -9 to running again", "ms", "restart.running", "", "< 1000 ms", func(v, _ float64) bool { return v < 1000 }},
	{"plugin restart: kill -9 to first delivered push", "ms", "restart.push", "", "", nil},
	{"memory: data-gateway idle (RSS)", "MiB", "mem.gateway.idle", "", "", nil},
	{"memory: data-gateway peak under load", "MiB", "mem.gateway.peak", "", "< 64 MiB", func(v, _ float64) bool { return v < 64 }},
	{"memory: control-tower idle (RSS)", "MiB", "mem.tower.idle", "", "", nil},
	{"memory: control-tower peak under load", "MiB", "mem.tower.peak", "", "< 64 MiB", func(v, _ float64) bool { return v < 64 }},
	{"memory: pusher plugin idle (RSS)", "MiB", "mem.pusher.idle", "", "", nil},
	{"memory: pusher plugin peak under load", "MiB", "mem.pusher.peak", "", "", nil},
	{"memory: peer (Benthos) peak under load", "MiB", "mem.peer.peak", "", "", nil},
}

// baselines say what each baseline is.
var baselines = map[string]string{
	"intake.base":  "in-process net/http handler that only decodes the same body with encoding/json (same load generator)",
	"publish.base": "amqp091-go publishing the same number of messages with confirms, 100 in flight, to the same RabbitMQ",
	"post.base":    "in-process net/http handler that only decodes the same trigger body",
	"peer":         "Benthos v4.60.0 (scripts/bench/benthos): http_server, a mapping splitting rows and adding the uuid, unarchive, file output one line per row in <uuid>.jsonl on the same tmpfs; one process, nothing stored durably; same load generator and bodies, end to end measured the same way",
}

// storeResults are the figures of the runs on one store.
type storeResults struct {
	store string
	res   results
}

var storeNames = map[string]string{
	"sqlite":   "embedded SQLite (WAL, fsync on commit) in a temporary directory",
	"postgres": "PostgreSQL on this machine (a fresh schema per run)",
}

func markdown(o options, machine string, stores []storeResults) string {
	var b strings.Builder
	commit := "unknown"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(&b, "# Benchmark results\n\n")
	flags := fmt.Sprintf("-runs %d -duration %s -stores %s", o.runs, o.duration, o.stores)
	fmt.Fprintf(&b, "`make bench` (`go run ./scripts/bench %s`), %s.\n\n", flags, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s\n- Commit: %s\n- Runs: %d per store; figures are median (min-max) over the runs; each ratio is taken within one run, against a baseline or the peer measured in that run.\n", machine, commit, o.runs)
	fmt.Fprintf(&b, "- Services run as child processes; RabbitMQ on this machine; %d-trigger bursts; %d connections, %s per load; the data-gateway with MAX_BACKLOG_AGE=%s.\n", o.triggers, o.conns, o.duration, maxBacklogAge)
	for _, st := range stores {
		fmt.Fprintf(&b, "\n## %s\n\n", storeNames[st.store])
		st.res.table(&b)
	}
	b.WriteString("\nBaselines:\n\n")
	for _, k := range []string{"intake.base", "publish.base", "post.base", "peer"} {
		fmt.Fprintf(&b, "- `%s`: %s.\n", k, baselines[k])
	}
	return b.String()
}

func (r results) table(b *strings.Builder) {
	b.WriteString("| measurement | unit | result | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|\n")
	for _, l := range report {
		if len(r[l.key]) == 0 {
			continue // not measured in this run (-only)
		}
		v := spreadOf(r[l.key])
		row := fmt.Sprintf("| %s | %s | %s |", l.what, l.unit, fmtSpread(v))
		ratio := spread{}
		if l.base != "" {
			ratio = spreadOf(r.ratios(l.key, l.base))
			row += fmt.Sprintf(" %s | %s |", fmtNum(spreadOf(r[l.base]).med), fmtRatio(ratio))
		} else {
			row += " | |"
		}
		met := ""
		if l.met != nil {
			met = "no"
			if l.met(v.med, ratio.med) {
				met = "yes"
			}
		}
		row += fmt.Sprintf(" %s | %s |\n", l.target, met)
		b.WriteString(row)
	}
}

func fmtSpread(s spread) string {
	return fmt.Sprintf("%s (%s-%s)", fmtNum(s.med), fmtNum(s.min), fmtNum(s.max))
}

func fmtRatio(s spread) string {
	return fmt.Sprintf("%.2f (%.2f-%.2f)", s.med, s.min, s.max)
}

func fmtNum(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

func cut(s, sep string) (string, string, bool) {
	k, v, ok := strings.Cut(s, sep)
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}
