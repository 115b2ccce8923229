// Package watcher is the Riffyn watcher plugin: it polls Riffyn Nexus for
// runs that started and turns each into protocol triggers, one per input
// resource named after an apiVersion. Runs named "<name> [RxC] <well>" are
// wells of one plate: they are gathered until all R*C wells run, then one
// trigger with a list spec is emitted. What it has seen lives in the
// host's State, and every trigger carries an idempotency key, so a restart
// of the plugin or the control-tower neither loses nor repeats a trigger.
package watcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/sdk"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Config is read from PLUGIN_<NAME>_* variables.
type Config struct {
	riffyn.Config
	PollInterval time.Duration `env:"POLL_INTERVAL" envDefault:"10s" help:"how often Riffyn is polled for started runs"`
}

// Watcher polls Riffyn.
type Watcher struct {
	cfg    Config
	client *riffyn.Client
}

var _ sdk.Watcher = (*Watcher)(nil)

// New returns a Watcher; its configuration is loaded by the SDK.
func New() *Watcher { return &Watcher{} }

// Info describes the plugin.
func (w *Watcher) Info() sdk.Info {
	return sdk.Info{
		Name:        "riffyn",
		Version:     Version,
		Description: "emits protocol triggers for runs started in Riffyn Nexus",
		Config:      &w.cfg,
	}
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context, host sdk.WatcherHost) error {
	if w.cfg.PollInterval <= 0 {
		return fmt.Errorf("%w: POLL_INTERVAL must be positive", sdk.ErrConfig)
	}
	w.client = w.cfg.Client()
	log := host.Logger()
	log.Info("polling Riffyn", "url", w.cfg.BaseURL, "every", w.cfg.PollInterval)
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := w.Poll(ctx, host); err != nil && ctx.Err() == nil {
			log.Error("poll failed; trying again next time", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// State keys.
const (
	runKey    = "run/"    // run id -> start number: the run is running and handled
	startsKey = "starts/" // run id -> how many starts were handled
	plateKey  = "plate/"  // activity/name/RxC -> partial plate
)

// Poll looks at every run once: newly running runs are handled, stopped
// ones forgotten so that a restart triggers again.
func (w *Watcher) Poll(ctx context.Context, host sdk.WatcherHost) error {
	handled, err := w.handledRuns(ctx, host.State())
	if err != nil {
		return err
	}
	experiments, err := w.client.Experiments(ctx)
	if err != nil {
		return err
	}
	for _, exp := range experiments {
		groups, err := w.client.RunGroups(ctx, exp.ID)
		if err != nil {
			return err
		}
		for _, g := range groups {
			runs, err := w.client.Runs(ctx, exp.ID, g.ID)
			if err != nil {
				return err
			}
			for _, run := range runs {
				_, known := handled[run.ID]
				switch {
				case run.Status == riffyn.RunRunning && !known:
					if err := w.started(ctx, host, exp.ID, run); err != nil {
						return err
					}
				case (run.Status == riffyn.RunStopped || run.Status == riffyn.RunNew) && known:
					if err := w.stopped(ctx, host, run); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (w *Watcher) handledRuns(ctx context.Context, st sdk.State) (map[string]struct{}, error) {
	kvs, err := st.List(ctx, runKey)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	out := make(map[string]struct{}, len(kvs))
	for _, kv := range kvs {
		out[strings.TrimPrefix(kv.Key, runKey)] = struct{}{}
	}
	return out, nil
}

// well is a run taking part in a plate, as kept in State.
type well struct {
	ID      string `json:"id"`
	GroupID string `json:"groupId"`
	Num     int    `json:"num"`
	Start   int    `json:"start"`
}

// plate is a partial plate, as kept in State.
type plate struct {
	Rows    int                     `json:"rows"`
	Columns int                     `json:"columns"`
	Inputs  []riffyn.RunResourceDef `json:"inputs"`
	Wells   map[int]well            `json:"wells"` // by 0-based well index
}

var plateNameRE = regexp.MustCompile(`^(.*) \[([1-9][0-9]*)x([1-9][0-9]*)\] ([1-9][0-9]*)$`)

// plateName parses "<name> [RxC] <well>"; well is returned 0-based.
func plateName(name string) (base string, rows, cols, idx int, ok bool) {
	m := plateNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", 0, 0, 0, false
	}
	rows, _ = strconv.Atoi(m[2])
	cols, _ = strconv.Atoi(m[3])
	n, _ := strconv.Atoi(m[4])
	return m[1], rows, cols, n - 1, true
}

func (w *Watcher) startNumber(ctx context.Context, st sdk.State, runID string) (int, error) {
	v, err := st.Get(ctx, startsKey+runID)
	if errors.Is(err, sdk.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	n, _ := strconv.Atoi(string(v))
	return n + 1, nil
}

// record notes a run as handled, with its start number.
func record(ctx context.Context, st sdk.State, runID string, start int) error {
	n := []byte(strconv.Itoa(start))
	if err := st.Put(ctx, startsKey+runID, n); err != nil {
		return err
	}
	return st.Put(ctx, runKey+runID, n)
}

func (w *Watcher) started(ctx context.Context, host sdk.WatcherHost, experimentID string, run riffyn.Run) error {
	st, log := host.State(), host.Logger().With("run", run.ID, "name", run.Name)
	start, err := w.startNumber(ctx, st, run.ID)
	if err != nil {
		return err
	}
	base, rows, cols, idx, isPlate := plateName(run.Name)
	if !isPlate {
		log.Info("run started")
		wells := []well{{ID: run.ID, GroupID: run.GroupID, Num: run.Num, Start: start}}
		if err := w.emit(ctx, host, experimentID, run.ActivityID, run.Inputs, wells, nil); err != nil {
			return err
		}
		return record(ctx, st, run.ID, start)
	}
	if idx >= rows*cols {
		log.Warn("run named as well of a plate, but the well is outside the plate; ignored", "well", idx+1, "plate", fmt.Sprintf("%dx%d", rows, cols))
		return record(ctx, st, run.ID, start)
	}
	key := fmt.Sprintf("%s%s/%s/%dx%d", plateKey, run.ActivityID, base, rows, cols)
	p, err := loadPlate(ctx, st, key)
	if err != nil {
		return err
	}
	if p == nil {
		p = &plate{Rows: rows, Columns: cols, Inputs: run.Inputs, Wells: map[int]well{}}
	}
	p.Wells[idx] = well{ID: run.ID, GroupID: run.GroupID, Num: run.Num, Start: start}
	log.Info("plate well started", "well", idx+1, "of", rows*cols, "running", len(p.Wells))
	if len(p.Wells) < rows*cols {
		if err := savePlate(ctx, st, key, p); err != nil {
			return err
		}
		return record(ctx, st, run.ID, start)
	}
	wells := make([]well, rows*cols)
	for i := range wells {
		wells[i] = p.Wells[i]
	}
	if err := w.emit(ctx, host, experimentID, run.ActivityID, p.Inputs, wells, &sdk.Plate{Rows: rows, Columns: cols}); err != nil {
		return err
	}
	if err := record(ctx, st, run.ID, start); err != nil {
		return err
	}
	return st.Delete(ctx, key)
}

func (w *Watcher) stopped(ctx context.Context, host sdk.WatcherHost, run riffyn.Run) error {
	st := host.State()
	host.Logger().Info("run stopped", "run", run.ID, "name", run.Name, "status", run.Status)
	if base, rows, cols, idx, ok := plateName(run.Name); ok {
		key := fmt.Sprintf("%s%s/%s/%dx%d", plateKey, run.ActivityID, base, rows, cols)
		p, err := loadPlate(ctx, st, key)
		if err != nil {
			return err
		}
		if p != nil && p.Wells[idx].ID == run.ID {
			delete(p.Wells, idx)
			if len(p.Wells) == 0 {
				err = st.Delete(ctx, key)
			} else {
				err = savePlate(ctx, st, key, p)
			}
			if err != nil {
				return err
			}
		}
	}
	return st.Delete(ctx, runKey+run.ID)
}

func loadPlate(ctx context.Context, st sdk.State, key string) (*plate, error) {
	v, err := st.Get(ctx, key)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var p plate
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("read plate %s: %w", key, err)
	}
	if p.Wells == nil {
		p.Wells = map[int]well{}
	}
	return &p, nil
}

func savePlate(ctx context.Context, st sdk.State, key string, p *plate) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, v)
}

// origin is a trigger's Riffyn metadata spec entry.
type origin struct {
	ExperimentID string `json:"experimentId"`
	ActivityID   string `json:"activityId"`
	RunID        string `json:"runId"`
}

// emit builds and emits the triggers of a run (or a plate's runs, with
// plate set), one per apiVersion among the inputs. A trigger the host
// rejects as invalid is logged and dropped; any other failure is returned
// so that the next poll tries again (with the same keys).
func (w *Watcher) emit(ctx context.Context, host sdk.WatcherHost, experimentID, activityID string, inputs []riffyn.RunResourceDef, wells []well, plate *sdk.Plate) error {
	log := host.Logger().With("experiment", experimentID, "activity", activityID)
	activity, err := w.client.Activity(ctx, experimentID, activityID)
	if err != nil {
		return err
	}
	q := riffyn.RawDataQuery{}
	for _, wl := range wells {
		q.RunGroupIDs = append(q.RunGroupIDs, wl.GroupID)
		q.RunIDs = append(q.RunIDs, wl.ID)
		q.RunNums = append(q.RunNums, wl.Num)
	}
	data, err := w.client.RawData(ctx, experimentID, activity.ID, q)
	if err != nil {
		return err
	}
	// apiVersion -> its input resources, in the order the run lists them.
	var versions []string
	resources := map[string][]string{}
	for _, in := range inputs {
		if !sdk.ValidAPIVersion(in.ResourceName) {
			continue
		}
		if _, ok := resources[in.ResourceName]; !ok {
			versions = append(versions, in.ResourceName)
		}
		resources[in.ResourceName] = append(resources[in.ResourceName], in.ResourceDefID)
	}
	if len(versions) == 0 {
		log.Info("no input resource is named after an apiVersion; nothing to trigger")
		return nil
	}
	key := triggerKey(activityID, wells)
	for _, version := range versions {
		t, err := buildTrigger(version, activity, resources[version], data, experimentID, wells, plate)
		if err == nil {
			var receipt sdk.Receipt
			receipt, err = host.Emit(ctx, t, key+":"+version)
			if err == nil {
				log.Info("trigger emitted", "uuid", receipt.UUID, "apiVersion", version, "protocol", t.Protocol, "duplicate", receipt.Duplicate)
				continue
			}
		}
		if !errors.Is(err, sdk.ErrInvalid) {
			return fmt.Errorf("emit %s trigger: %w", version, err)
		}
		log.Error("trigger not valid; dropped", "apiVersion", version, "error", err)
	}
	return nil
}

// triggerKey identifies one start of a run or a plate's runs.
func triggerKey(activityID string, wells []well) string {
	if len(wells) == 1 {
		return fmt.Sprintf("riffyn:%s:%d", wells[0].ID, wells[0].Start)
	}
	h := sha256.New()
	h.Write([]byte(activityID))
	for _, wl := range wells {
		fmt.Fprintf(h, "|%s:%d", wl.ID, wl.Start)
	}
	return "riffyn:plate:" + hex.EncodeToString(h.Sum(nil)[:12])
}

// buildTrigger makes the trigger of one apiVersion: the spec of each run
// holds the input properties (camelCased) of that apiVersion's resources
// with the run's values; null values are left out.
func buildTrigger(version string, a riffyn.Activity, resourceIDs []string, data riffyn.DataTables, experimentID string, wells []well, plate *sdk.Plate) (sdk.Trigger, error) {
	type column struct{ key, header string }
	var columns []column
	for _, in := range a.Inputs {
		if !contains(resourceIDs, in.ID) {
			continue
		}
		for _, p := range in.Properties {
			columns = append(columns, column{riffyn.CamelCase(p.Name), a.ID + " | input | " + in.ID + " | " + p.ID + " | value"})
		}
	}
	specs := make([]json.RawMessage, len(wells))
	origins := make([]origin, len(wells))
	for i, wl := range wells {
		origins[i] = origin{ExperimentID: experimentID, ActivityID: a.ID, RunID: wl.ID}
		var row map[string]json.RawMessage
		if dt := data.DataTables[wl.ID]; len(dt.DataTable) > 0 {
			row = dt.DataTable[0]
		}
		var spec sdk.Data
		for _, c := range columns {
			if v, ok := row[c.header]; ok && string(v) != "null" {
				spec = append(spec, sdk.Field{Key: c.key, Value: v})
			}
		}
		b, err := spec.MarshalJSON()
		if err != nil {
			return sdk.Trigger{}, err
		}
		specs[i] = b
	}
	t := sdk.Trigger{APIVersion: version, Protocol: riffyn.PascalCase(a.Name), Plate: plate}
	var err error
	if plate == nil {
		t.Spec = specs[0]
		t.Metadata = &sdk.Metadata{Source: "riffyn"}
		t.Metadata.Spec, err = json.Marshal(origins[0])
	} else {
		if t.Spec, err = json.Marshal(specs); err == nil {
			t.Metadata = &sdk.Metadata{Source: "riffyn"}
			t.Metadata.Spec, err = json.Marshal(origins)
		}
	}
	return t, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
