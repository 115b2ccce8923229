// Package pusher is the Riffyn pusher plugin: it writes data rows into the
// Riffyn run a trigger came from. The run's activity's last output
// resource receives them: the output's first property is the key column,
// whose values create the events (one per row); the row's keys that name
// the output's other properties fill those events through their event
// group. Keys that name no property are ignored and reported (or refused
// with STRICT_KEYS). For a plate trigger, a row's index selects the
// well's run.
package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/sdk"
)

// Version is the plugin's version.
const Version = "1.1.0"

// maxNoteKeys bounds how many ignored keys the delivery's note names; the
// log line names them all.
const maxNoteKeys = 50

// Config is read from PLUGIN_<NAME>_* variables.
type Config struct {
	riffyn.Config
	StrictKeys bool `env:"STRICT_KEYS" envDefault:"false" help:"true: a row key that is not a property of the run's output fails the push permanently (dead letter); false: such keys are ignored and named in the log and the delivery's note"`
}

// Pusher writes to Riffyn.
type Pusher struct {
	cfg    Config
	client *riffyn.Client
	log    *slog.Logger
}

var _ sdk.Pusher = (*Pusher)(nil)

// New returns a Pusher; its configuration is loaded by the SDK.
func New() *Pusher { return &Pusher{log: slog.New(slog.DiscardHandler)} }

// Info describes the plugin.
func (p *Pusher) Info() sdk.Info {
	return sdk.Info{
		Name:        "riffyn",
		Version:     Version,
		Description: "writes data rows into the Riffyn run that triggered them",
		Config:      &p.cfg,
	}
}

// Start creates the API client.
func (p *Pusher) Start(_ context.Context, host sdk.Host) error {
	p.client = p.cfg.Client()
	p.log = host.Logger()
	return nil
}

// origin is one entry of a Riffyn trigger's metadata spec.
type origin struct {
	ExperimentID string `json:"experimentId"`
	ActivityID   string `json:"activityId"`
	RunID        string `json:"runId"`
}

// write is one run's share of a push: the rows (positions in the push's
// rows) to write into the output of the run's activity.
type write struct {
	origin   origin
	activity riffyn.Activity
	output   riffyn.ResourceDef
	rows     []int
}

// Push writes the rows. Triggers from other sources are skipped. Every
// row is checked against its run's output before anything is written: a
// row without a value for the key column, an index outside the plate (or
// with STRICT_KEYS, a key that is not a property of the output) fails
// permanently with a message naming it. Other keys that are not
// properties are ignored: the push then returns sdk.Delivered with a note
// naming them, also logged in one line. Riffyn 5xx answers and timeouts
// are retried; its 4xx answers are permanent.
func (p *Pusher) Push(ctx context.Context, req sdk.PushRequest) error {
	t := req.Trigger
	switch {
	case t == nil:
		return sdk.Skip("trigger " + req.UUID + " is unknown: the data-gateway needs CONTROL_TOWER_URL to resolve it")
	case t.Metadata == nil || t.Metadata.Source != "riffyn":
		src := "none"
		if t.Metadata != nil {
			src = t.Metadata.Source
		}
		return sdk.Skip(fmt.Sprintf("trigger source is %q, not riffyn", src))
	}
	targets, err := parseOrigins(t)
	if err != nil {
		return sdk.Permanent(err)
	}
	byTarget, err := groupRows(req.Rows, t, targets)
	if err != nil {
		return sdk.Permanent(err)
	}
	var (
		writes     []write
		ignored    ignoredKeys
		activities = map[string]riffyn.Activity{}
	)
	for _, i := range sortedKeys(byTarget) {
		o := targets[i]
		a, ok := activities[o.ExperimentID+"/"+o.ActivityID]
		if !ok {
			if a, err = p.client.Activity(ctx, o.ExperimentID, o.ActivityID); err != nil {
				return classify(err)
			}
			activities[o.ExperimentID+"/"+o.ActivityID] = a
		}
		w := write{origin: o, activity: a, rows: byTarget[i]}
		if w.output, err = p.check(req.Rows, w.rows, a, &ignored); err != nil {
			return sdk.Permanent(err)
		}
		writes = append(writes, w)
	}
	for _, w := range writes {
		if err := p.populate(ctx, w, req.Rows); err != nil {
			return err
		}
	}
	if ignored.empty() {
		return nil
	}
	p.log.Info("ignored keys that are not properties of the output", "uuid", req.UUID, "rows", len(req.Rows),
		"output", strings.Join(ignored.outputs, ", "), "keys", strings.Join(ignored.all, ", "))
	return sdk.Delivered(ignored.note(maxNoteKeys))
}

// parseOrigins reads the metadata spec: one origin, or one per well.
func parseOrigins(t *sdk.StoredTrigger) ([]origin, error) {
	spec := t.Metadata.Spec
	var list []origin
	if err := json.Unmarshal(spec, &list); err != nil {
		var one origin
		if err := json.Unmarshal(spec, &one); err != nil {
			return nil, fmt.Errorf("trigger %s: metadata.spec is not a Riffyn origin: %s", t.UUID, spec)
		}
		list = []origin{one}
	}
	for i, o := range list {
		if o.ExperimentID == "" || o.ActivityID == "" || o.RunID == "" {
			return nil, fmt.Errorf("trigger %s: metadata.spec[%d] lacks experimentId, activityId or runId", t.UUID, i)
		}
	}
	return list, nil
}

// groupRows assigns the rows' positions to their run: all to the one run,
// or by index to the well's run for a plate trigger.
func groupRows(rows []sdk.Row, t *sdk.StoredTrigger, targets []origin) (map[int][]int, error) {
	out := map[int][]int{}
	single := t.Plate == nil && len(targets) == 1
	for i, r := range rows {
		switch {
		case single:
			out[0] = append(out[0], i)
			continue
		case r.Index == nil:
			return nil, fmt.Errorf("rows[%d] has no index, but trigger %s is plate-based (%d wells)", i, t.UUID, len(targets))
		case *r.Index >= len(targets):
			return nil, fmt.Errorf("rows[%d].index %d is beyond the plate's %d wells", i, *r.Index, len(targets))
		}
		out[*r.Index] = append(out[*r.Index], i)
	}
	return out, nil
}

func sortedKeys(m map[int][]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// check returns the output the rows at positions go to (the activity's
// last) once every one of them has a value for its key column and, with
// STRICT_KEYS, no key that is not one of its properties; without
// STRICT_KEYS such keys are added to ignored.
func (p *Pusher) check(rows []sdk.Row, positions []int, a riffyn.Activity, ignored *ignoredKeys) (riffyn.ResourceDef, error) {
	if len(a.Outputs) == 0 {
		return riffyn.ResourceDef{}, fmt.Errorf("activity %s (%s) has no output resource to write to", a.Name, a.ID)
	}
	out := a.Outputs[len(a.Outputs)-1]
	if len(out.Properties) == 0 {
		return out, fmt.Errorf("output %q of activity %s has no properties", out.Name, a.Name)
	}
	keyName := riffyn.CamelCase(out.Properties[0].Name)
	known := make(map[string]bool, len(out.Properties))
	names := make([]string, len(out.Properties))
	for i, prop := range out.Properties {
		names[i] = riffyn.CamelCase(prop.Name)
		known[names[i]] = true
	}
	for _, i := range positions {
		f, ok := rows[i].Data.Get(keyName)
		switch {
		case !ok:
			return out, fmt.Errorf("rows[%d] lacks the key column %q (the first property of output %q)", i, keyName, out.Name)
		case f.Text() == "":
			return out, fmt.Errorf("rows[%d] has no value for the key column %q (the first property of output %q): %s", i, keyName, out.Name, f.Value)
		}
		for _, f := range rows[i].Data {
			switch {
			case known[f.Key]:
			case p.cfg.StrictKeys:
				return out, fmt.Errorf("rows[%d]: %q is not a property of output %q (it has %s); STRICT_KEYS refuses such rows",
					i, f.Key, out.Name, strings.Join(names, ", "))
			default:
				ignored.add(out.Name, f.Key)
			}
		}
	}
	return out, nil
}

// populate writes one run's rows: the key column creates the events, then
// the other properties fill them. Null and empty values are left out.
func (p *Pusher) populate(ctx context.Context, w write, rows []sdk.Row) error {
	o, out := w.origin, w.output
	keyProp := out.Properties[0]
	keyName := riffyn.CamelCase(keyProp.Name)
	keys := make([]any, len(w.rows))
	for k, i := range w.rows {
		f, _ := rows[i].Data.Get(keyName)
		keys[k] = f.Text()
	}
	appendEvents := true
	created, err := p.client.AddBatchRunData(ctx, o.ExperimentID, w.activity.ID, []riffyn.BatchItem{{
		ResourceDefID: out.ID, PropertyTypeID: keyProp.ID, RunIDs: []string{o.RunID}, Values: keys, Append: &appendEvents,
	}})
	if err != nil {
		return classify(err)
	}
	if len(created) == 0 || len(created[0].Data) != len(w.rows) {
		return fmt.Errorf("riffyn created %d events for %d rows", eventsIn(created), len(w.rows))
	}
	events := created[0]
	var items []riffyn.BatchItem
	for _, prop := range out.Properties[1:] {
		name := riffyn.CamelCase(prop.Name)
		var values []any
		for k, i := range w.rows {
			if f, ok := rows[i].Data.Get(name); ok && f.Text() != "" {
				values = append(values, riffyn.EventValue{EventID: string(events.Data[k].EventID), Value: f.Text()})
			}
		}
		if len(values) > 0 {
			items = append(items, riffyn.BatchItem{
				ResourceDefID: out.ID, PropertyTypeID: prop.ID, EventGroupID: events.EventGroupID,
				RunIDs: []string{o.RunID}, Values: values,
			})
		}
	}
	if len(items) == 0 {
		return nil
	}
	_, err = p.client.AddBatchRunData(ctx, o.ExperimentID, w.activity.ID, items)
	return classify(err)
}

// ignoredKeys collects, in first-seen order and once each, the keys of a
// push that are not properties of their output: per output name, and all
// together.
type ignoredKeys struct {
	outputs []string
	keys    map[string][]string // by output
	all     []string
	seen    map[string]bool // output + "\x00" + key, and key
}

func (ig *ignoredKeys) add(output, key string) {
	if ig.seen == nil {
		ig.seen, ig.keys = map[string]bool{}, map[string][]string{}
	}
	if ig.seen[output+"\x00"+key] {
		return
	}
	ig.seen[output+"\x00"+key] = true
	if _, ok := ig.keys[output]; !ok {
		ig.outputs = append(ig.outputs, output)
	}
	ig.keys[output] = append(ig.keys[output], key)
	if !ig.seen[key] {
		ig.seen[key] = true
		ig.all = append(ig.all, key)
	}
}

func (ig *ignoredKeys) empty() bool { return len(ig.outputs) == 0 }

// note names the keys: `ignored keys that are not properties of output
// "Readings": error, colour`, one clause per output joined by "; ", each
// naming at most limit keys, then "and N more".
func (ig *ignoredKeys) note(limit int) string {
	parts := make([]string, len(ig.outputs))
	for i, out := range ig.outputs {
		keys := ig.keys[out]
		list := strings.Join(keys, ", ")
		if len(keys) > limit {
			list = fmt.Sprintf("%s and %d more", strings.Join(keys[:limit], ", "), len(keys)-limit)
		}
		parts[i] = fmt.Sprintf("ignored keys that are not properties of output %q: %s", out, list)
	}
	return strings.Join(parts, "; ")
}

func eventsIn(rd []riffyn.RunData) int {
	if len(rd) == 0 {
		return 0
	}
	return len(rd[0].Data)
}

// classify makes Riffyn's 4xx answers permanent (retrying the same rows
// cannot help) and leaves 5xx, 429 and network failures retryable.
func classify(err error) error {
	if err == nil || riffyn.IsTemporary(err) {
		return err
	}
	var ae *riffyn.APIError
	if errors.As(err, &ae) {
		return sdk.Permanent(err)
	}
	return err
}
