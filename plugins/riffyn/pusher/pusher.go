// Package pusher is the Riffyn pusher plugin: it writes data rows into the
// Riffyn run a trigger came from. The run's activity's last output
// resource receives them: the output's first property is the key column,
// whose values create the events (one per row); the other keys of each row
// fill those events through their event group. For a plate trigger, a
// row's index selects the well's run.
package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/sdk"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Pusher writes to Riffyn.
type Pusher struct {
	cfg    riffyn.Config
	client *riffyn.Client
}

// New returns a Pusher; its configuration is loaded by the SDK.
func New() *Pusher { return &Pusher{} }

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
func (p *Pusher) Start(context.Context, sdk.Host) error {
	p.client = p.cfg.Client()
	return nil
}

// origin is one entry of a Riffyn trigger's metadata spec.
type origin struct {
	ExperimentID string `json:"experimentId"`
	ActivityID   string `json:"activityId"`
	RunID        string `json:"runId"`
}

// Push writes the rows. Triggers from other sources are skipped; rows that
// cannot fit the run (no key column, unknown property, index outside the
// plate) fail permanently with a message naming what is wrong; Riffyn
// 5xx answers and timeouts are retried.
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
	activities := map[string]riffyn.Activity{}
	for _, i := range sortedKeys(byTarget) {
		o := targets[i]
		a, ok := activities[o.ExperimentID+"/"+o.ActivityID]
		if !ok {
			if a, err = p.client.Activity(ctx, o.ExperimentID, o.ActivityID); err != nil {
				return classify(err)
			}
			activities[o.ExperimentID+"/"+o.ActivityID] = a
		}
		if err := p.populate(ctx, o, a, byTarget[i]); err != nil {
			return err
		}
	}
	return nil
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

// groupRows assigns rows to their run: all to the one run, or by index to
// the well's run for a plate trigger.
func groupRows(rows []sdk.Row, t *sdk.StoredTrigger, targets []origin) (map[int][]sdk.Row, error) {
	out := map[int][]sdk.Row{}
	if t.Plate == nil && len(targets) == 1 {
		out[0] = rows
		return out, nil
	}
	for i, r := range rows {
		switch {
		case r.Index == nil:
			return nil, fmt.Errorf("rows[%d] has no index, but trigger %s is plate-based (%d wells)", i, t.UUID, len(targets))
		case *r.Index >= len(targets):
			return nil, fmt.Errorf("rows[%d].index %d is beyond the plate's %d wells", i, *r.Index, len(targets))
		}
		out[*r.Index] = append(out[*r.Index], r)
	}
	return out, nil
}

func sortedKeys(m map[int][]sdk.Row) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// populate writes one run's rows: the key column creates the events, then
// the other properties fill them.
func (p *Pusher) populate(ctx context.Context, o origin, a riffyn.Activity, rows []sdk.Row) error {
	if len(a.Outputs) == 0 {
		return sdk.Permanent(fmt.Errorf("activity %s (%s) has no output resource to write to", a.Name, a.ID))
	}
	out := a.Outputs[len(a.Outputs)-1]
	if len(out.Properties) == 0 {
		return sdk.Permanent(fmt.Errorf("output %q of activity %s has no properties", out.Name, a.Name))
	}
	keyProp := out.Properties[0]
	keyName := riffyn.CamelCase(keyProp.Name)
	known := map[string]riffyn.PropertyDef{}
	var names []string
	for _, prop := range out.Properties {
		known[riffyn.CamelCase(prop.Name)] = prop
		names = append(names, riffyn.CamelCase(prop.Name))
	}
	keys := make([]any, len(rows))
	for i, r := range rows {
		f, ok := r.Data.Get(keyName)
		if !ok {
			return sdk.Permanent(fmt.Errorf("row %d lacks the key column %q (the first property of output %q)", i, keyName, out.Name))
		}
		keys[i] = f.Text()
		for _, f := range r.Data {
			if _, ok := known[f.Key]; !ok {
				return sdk.Permanent(fmt.Errorf("row %d: %q is not a property of output %q (it has %s)", i, f.Key, out.Name, strings.Join(names, ", ")))
			}
		}
	}
	appendEvents := true
	created, err := p.client.AddBatchRunData(ctx, o.ExperimentID, a.ID, []riffyn.BatchItem{{
		ResourceDefID: out.ID, PropertyTypeID: keyProp.ID, RunIDs: []string{o.RunID}, Values: keys, Append: &appendEvents,
	}})
	if err != nil {
		return classify(err)
	}
	if len(created) == 0 || len(created[0].Data) != len(rows) {
		return fmt.Errorf("riffyn created %d events for %d rows", eventsIn(created), len(rows))
	}
	events := created[0]
	var items []riffyn.BatchItem
	for _, prop := range out.Properties[1:] {
		name := riffyn.CamelCase(prop.Name)
		var values []any
		for i, r := range rows {
			if f, ok := r.Data.Get(name); ok && f.Text() != "" {
				values = append(values, riffyn.EventValue{EventID: string(events.Data[i].EventID), Value: f.Text()})
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
	_, err = p.client.AddBatchRunData(ctx, o.ExperimentID, a.ID, items)
	return classify(err)
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
