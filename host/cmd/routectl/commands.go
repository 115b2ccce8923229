package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// env is what a command works with.
type env struct {
	client *client
	json   bool // print raw JSON answers
	stdin  io.Reader
	stdout io.Writer
}

// command is one routectl command. run defines its flags on fs, parses
// args with parseArgs and does the work.
type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

// synopsis is the command with its arguments, as usage shows it.
func (c command) synopsis() string { return strings.TrimSpace(c.name + " " + c.args) }

// commands are routectl's commands, in the order usage lists them.
var commands = []command{
	{"plugins", "", "list the plugins, and the plugin files skipped", runPlugins},
	{"restart", "<name>", "restart a plugin now (also a failed one)", runRestart},
	{"stop", "<name>", "stop a plugin until it is started again", pluginAction("stop")},
	{"start", "<name>", "start a stopped or failed plugin", pluginAction("start")},
	{"rescan", "", "rescan the plugins directory now, then list the plugins", runRescan},
	{"status", "", "the service's backlog: pending triggers, or tasks and dead letters per pusher", runStatus},
	{"triggers", "[--limit N] [--status STATUS] [--protocol P] [--source SOURCE]", "list recent triggers, newest first (control-tower)", runTriggers},
	{"trigger", "<uuid>", "show one trigger as JSON (control-tower)", runTrigger},
	{"post-trigger", "<file>", "post the trigger in file, - for stdin (control-tower)", runPostTrigger},
	{"deadletters", "[--pusher NAME] [--uuid UUID]", "list dead letters (data-gateway)", runDeadLetters},
	{"retry", "<id>", "deliver a dead letter again (data-gateway)", runRetry},
}

// findCommand returns the command called name.
func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// parseArgs parses a command's flags and checks that exactly the named
// positional arguments follow; it returns them.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	switch rest := fs.Args(); {
	case len(rest) < len(names):
		return nil, usagef("missing %s", names[len(rest)])
	case len(rest) > len(names):
		return nil, usagef("unexpected argument %q", rest[len(names)])
	default:
		return rest, nil
	}
}

// call sends a request and decodes the answer into v; with --json it
// prints the answer as it came instead, and reports that it did. It
// returns the answer's status.
func (e *env) call(ctx context.Context, method, path string, query url.Values, body []byte, v any) (status int, printed bool, err error) {
	if e.json {
		status, answer, err := e.client.do(ctx, method, path, query, body)
		if err != nil {
			return 0, false, err
		}
		return status, true, e.printRaw(answer)
	}
	status, _, err = e.client.fetch(ctx, method, path, query, body, v)
	return status, false, err
}

// printRaw writes a JSON answer as the service sent it.
func (e *env) printRaw(body []byte) error {
	if _, err := e.stdout.Write(body); err != nil {
		return err
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		_, err := io.WriteString(e.stdout, "\n")
		return err
	}
	return nil
}

// pluginStatus is the part of a plugin's status that routectl shows.
type pluginStatus struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	PID   int    `json:"pid"`
	Info  *struct {
		Version string `json:"version"`
	} `json:"info"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"lastError"`
	// Holder is the instance holding the plugin's lease, when instances
	// share a database (control-towers on PostgreSQL).
	Holder string `json:"holder"`
}

func runPlugins(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return listPlugins(ctx, e, fs, args, http.MethodGet, "/plugins")
}

func runRescan(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return listPlugins(ctx, e, fs, args, http.MethodPost, "/plugins/rescan")
}

// listPlugins prints the plugin list the request answers with.
func listPlugins(ctx context.Context, e *env, fs *flag.FlagSet, args []string, method, path string) error {
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	var list struct {
		Plugins []pluginStatus `json:"plugins"`
		Skipped []struct {
			File   string `json:"file"`
			Reason string `json:"reason"`
		} `json:"skipped"`
	}
	if _, printed, err := e.call(ctx, method, path, nil, nil, &list); printed || err != nil {
		return err
	}
	// A HOLDER column when the service runs its plugins under leases
	// shared with other instances.
	leased := slices.ContainsFunc(list.Plugins, func(p pluginStatus) bool { return p.Holder != "" || p.State == "standby" })
	rows := make([][]string, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		pid, version := "-", "-"
		if p.PID != 0 {
			pid = strconv.Itoa(p.PID)
		}
		if p.Info != nil {
			version = cell(p.Info.Version, 20)
		}
		row := []string{p.Name, p.Kind, p.State}
		if leased {
			row = append(row, cell(p.Holder, 40))
		}
		rows = append(rows, append(row, pid, version, strconv.Itoa(p.Restarts), cell(p.LastError, 60)))
	}
	header := []string{"NAME", "KIND", "STATE", "PID", "VERSION", "RESTARTS", "LAST ERROR"}
	if leased {
		header = slices.Insert(header, 3, "HOLDER")
	}
	if err := writeTable(e.stdout, header, rows); err != nil {
		return err
	}
	if len(list.Skipped) == 0 {
		return nil
	}
	rows = rows[:0]
	for _, s := range list.Skipped {
		rows = append(rows, []string{s.File, cell(s.Reason, 100)})
	}
	fmt.Fprintln(e.stdout)
	return writeTable(e.stdout, []string{"SKIPPED FILE", "REASON"}, rows)
}

// runRestart restarts a plugin and waits, within --timeout, for the new
// process: until the plugin's restart count has gone up and it is no
// longer starting, or it runs with a new pid. It fails unless the plugin
// then runs. A plugin standing by runs on its lease's holder, which
// restarts it: that is reported without waiting.
func runRestart(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args, "<name>")
	if err != nil {
		return err
	}
	path := "/plugins/" + url.PathEscape(pos[0])
	var before pluginStatus
	if _, _, err := e.client.fetch(ctx, http.MethodGet, path, nil, nil, &before); err != nil {
		return err
	}
	if _, _, err := e.client.fetch(ctx, http.MethodPost, path+"/restart", nil, nil, &pluginStatus{}); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart of %s accepted, but it did not come back within %s (see routectl plugins)", pos[0], e.client.timeout)
		case <-tick.C:
		}
		var st pluginStatus
		_, answer, err := e.client.fetch(ctx, http.MethodGet, path, nil, nil, &st)
		switch {
		case err != nil:
			return err
		case st.State == "standby" && st.Holder != "":
			if e.json {
				return e.printRaw(answer)
			}
			fmt.Fprintf(e.stdout, "restart of %s requested: it runs on %s, which restarts it (standby here)\n", st.Name, st.Holder)
			return nil
		case st.State == "running" && st.PID != before.PID:
		case st.Restarts <= before.Restarts || st.State == "starting":
			continue
		}
		switch {
		case e.json:
			return e.printRaw(answer)
		case st.State != "running":
			return fmt.Errorf("restarted %s, but it is %s: %s", st.Name, st.State, cell(st.LastError, 200))
		}
		fmt.Fprintf(e.stdout, "restarted %s: running, pid %d\n", st.Name, st.PID)
		return nil
	}
}

// pluginAction is a command that POSTs action (stop or start) for one
// plugin and waits, within --timeout, for the state it leads to.
func pluginAction(action string) func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	done := map[string]func(state string) bool{
		"stop":  func(state string) bool { return state == "stopped" },
		"start": func(state string) bool { return state != "stopped" && state != "starting" },
	}[action]
	return func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
		pos, err := parseArgs(fs, args, "<name>")
		if err != nil {
			return err
		}
		path := "/plugins/" + url.PathEscape(pos[0])
		if _, _, err := e.client.fetch(ctx, http.MethodPost, path+"/"+action, nil, nil, &pluginStatus{}); err != nil {
			return err
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var st pluginStatus
			_, answer, err := e.client.fetch(ctx, http.MethodGet, path, nil, nil, &st)
			switch {
			case err != nil:
				return err
			case !done(st.State):
			case e.json:
				return e.printRaw(answer)
			case action == "start" && st.State == "standby":
				fmt.Fprintf(e.stdout, "start %s: standby, runs on %s\n", st.Name, cell(st.Holder, 200))
				return nil
			case action == "start" && st.State != "running":
				return fmt.Errorf("started %s, but it is %s: %s", st.Name, st.State, cell(st.LastError, 200))
			default:
				fmt.Fprintf(e.stdout, "%s %s: %s\n", action, st.Name, st.State)
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s of %s accepted, but it is still %s after %s (see routectl plugins)", action, pos[0], st.State, e.client.timeout)
			case <-tick.C:
			}
		}
	}
}

// runStatus prints GET /status: the summary's figures, one per line,
// sorted by name.
func runStatus(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	var status struct {
		Service string         `json:"service"`
		Summary map[string]any `json:"summary"`
	}
	if _, printed, err := e.call(ctx, http.MethodGet, "/status", nil, nil, &status); printed || err != nil {
		return err
	}
	var rows [][]string
	for _, name := range slices.Sorted(maps.Keys(status.Summary)) {
		switch v := status.Summary[name].(type) {
		case map[string]any: // per pusher
			for _, p := range slices.Sorted(maps.Keys(v)) {
				rows = append(rows, []string{name, p, fmt.Sprint(v[p])})
			}
		default:
			rows = append(rows, []string{name, "", fmt.Sprint(v)})
		}
	}
	fmt.Fprintln(e.stdout, status.Service)
	return writeTable(e.stdout, []string{"FIGURE", "PUSHER", "VALUE"}, rows)
}

// storedTrigger is the part of a stored trigger that routectl shows.
type storedTrigger struct {
	UUID      string    `json:"uuid"`
	Protocol  string    `json:"protocol"`
	Source    string    `json:"source"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

func runTriggers(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	limit := fs.Int("limit", 20, "show at most `N` triggers (1-500)")
	status := fs.String("status", "", "only triggers in `STATUS`: pending, published or unroutable")
	protocol := fs.String("protocol", "", "only triggers of protocol `P`")
	source := fs.String("source", "", "only triggers from `SOURCE`: http or watcher:<name>")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	query := url.Values{"limit": {strconv.Itoa(*limit)}}
	for name, v := range map[string]string{"status": *status, "protocol": *protocol, "source": *source} {
		if v != "" {
			query.Set(name, v)
		}
	}
	var list struct {
		Triggers []storedTrigger `json:"triggers"`
	}
	if _, printed, err := e.call(ctx, http.MethodGet, "/triggers", query, nil, &list); printed || err != nil {
		return err
	}
	rows := make([][]string, 0, len(list.Triggers))
	for _, t := range list.Triggers {
		rows = append(rows, []string{t.UUID, cell(t.Protocol, 40), cell(t.Source, 30), t.Status, timeCell(t.CreatedAt)})
	}
	return writeTable(e.stdout, []string{"UUID", "PROTOCOL", "SOURCE", "STATUS", "CREATED"}, rows)
}

func runTrigger(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args, "<uuid>")
	if err != nil {
		return err
	}
	// A trigger is nested data: JSON is its natural display, table or not.
	_, body, err := e.client.do(ctx, http.MethodGet, "/triggers/"+url.PathEscape(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	return e.printRaw(body)
}

func runPostTrigger(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args, "<file>")
	if err != nil {
		return err
	}
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("read the trigger: %v", err)
	}
	var t storedTrigger
	status, printed, err := e.call(ctx, http.MethodPost, "/triggers", nil, data, &t)
	if printed || err != nil {
		return err
	}
	if status == http.StatusCreated {
		fmt.Fprintf(e.stdout, "created trigger %s (%s)\n", t.UUID, t.Status)
	} else {
		fmt.Fprintf(e.stdout, "unchanged: trigger %s was already stored with this content (%s)\n", t.UUID, t.Status)
	}
	return nil
}

// taskStatus is a dead letter, or a task once retried.
type taskStatus struct {
	ID        int64  `json:"id"`
	Pusher    string `json:"pusher"`
	UUID      string `json:"uuid"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
}

func runDeadLetters(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	pusher := fs.String("pusher", "", "only dead letters of the pusher instance `NAME`")
	uuid := fs.String("uuid", "", "only dead letters of the trigger `UUID`")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	query := url.Values{}
	if *pusher != "" {
		query.Set("pusher", *pusher)
	}
	if *uuid != "" {
		query.Set("uuid", *uuid)
	}
	var list struct {
		DeadLetters []taskStatus `json:"deadletters"`
	}
	if _, printed, err := e.call(ctx, http.MethodGet, "/deadletters", query, nil, &list); printed || err != nil {
		return err
	}
	rows := make([][]string, 0, len(list.DeadLetters))
	for _, d := range list.DeadLetters {
		rows = append(rows, []string{strconv.FormatInt(d.ID, 10), d.Pusher, d.UUID, strconv.Itoa(d.Attempts), cell(d.LastError, 60)})
	}
	return writeTable(e.stdout, []string{"ID", "PUSHER", "UUID", "ATTEMPTS", "LAST ERROR"}, rows)
}

func runRetry(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args, "<id>")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id < 1 {
		return usagef("dead letter id %q: want a positive integer", pos[0])
	}
	var t taskStatus
	if _, printed, err := e.call(ctx, http.MethodPost, "/deadletters/"+strconv.FormatInt(id, 10)+"/retry", nil, nil, &t); printed || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "retry of dead letter %d accepted: pusher %s, uuid %s, now %s\n", t.ID, t.Pusher, t.UUID, t.State)
	return nil
}
