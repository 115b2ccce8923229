package pusher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routinglayer/routing/plugins/riffyn/pusher"
	"github.com/routinglayer/routing/plugins/riffyn/riffyntest"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/sdktest"
)

func start(t *testing.T, s *riffyntest.Server) *sdktest.PusherConn {
	t.Helper()
	client, _ := startWith(t, s, nil)
	return client
}

// startWith starts the pusher with extra configuration and returns it
// with its log.
func startWith(t *testing.T, s *riffyntest.Server, config map[string]string) (*sdktest.PusherConn, *logBuffer) {
	t.Helper()
	cfg := map[string]string{"API_KEY": "key", "BASE_URL": s.BaseURL()}
	maps.Copy(cfg, config)
	log := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return sdktest.NewService().StartPusher(t, pusher.New(), sdktest.Options{Config: cfg, Logger: logger}), log
}

// logBuffer keeps the plugin's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines that contain s.
func (b *logBuffer) lines(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func rows(tb testing.TB, bodies ...string) []sdk.Row {
	tb.Helper()
	out := make([]sdk.Row, len(bodies))
	for i, b := range bodies {
		if err := sdk.DecodeStrict([]byte(b), &out[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func trigger(source string, plate *sdk.Plate, spec string) *sdk.StoredTrigger {
	return &sdk.StoredTrigger{
		Trigger: sdk.Trigger{
			UUID: "t1", APIVersion: riffyntest.APIVersion, Protocol: "PlateTransfer", Plate: plate, Spec: json.RawMessage(`{"volume":1}`),
			Metadata: &sdk.Metadata{Source: source, Spec: json.RawMessage(spec)},
		},
		CreatedAt: time.Now(), Source: "watcher:riffyn", Status: "published",
	}
}

func origin(f riffyntest.Fixture, run string) string {
	return `{"experimentId":"` + f.ExperimentID + `","activityId":"` + f.ActivityID + `","runId":"` + run + `"}`
}

// compact normalises a JSON document for comparison.
func compact(tb testing.TB, s string) string {
	tb.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		tb.Fatalf("%s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSingleRunBodies(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	client := start(t, s)
	err := client.Push(context.Background(), sdk.PushRequest{
		UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", nil, origin(f, run)),
		Rows: rows(t,
			`{"data":{"timeElapsed":0,"odMeasured":0.11}}`,
			`{"data":{"odMeasured":0.42,"timeElapsed":10,"note":"bubbles"}}`,
			`{"data":{"timeElapsed":20,"note":""}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	bodies := s.BatchRequests()
	if len(bodies) != 2 {
		t.Fatalf("%d add-batch-run-data requests, want 2", len(bodies))
	}
	want := []string{
		`{"batchData":[{"resourceDefId":"res-readings","propertyTypeId":"prop-time","runIds":["` + run + `"],"values":["0","10","20"],"append":true}]}`,
		`{"batchData":[
			{"resourceDefId":"res-readings","propertyTypeId":"prop-od","runIds":["` + run + `"],"eventGroupId":"eg-` + run + `-res-readings",
			 "values":[{"eventId":"0","value":"0.11"},{"eventId":"1","value":"0.42"}]},
			{"resourceDefId":"res-readings","propertyTypeId":"prop-note","runIds":["` + run + `"],"eventGroupId":"eg-` + run + `-res-readings",
			 "values":[{"eventId":"1","value":"bubbles"}]}]}`,
	}
	for i := range want {
		if got := compact(t, string(bodies[i])); got != compact(t, want[i]) {
			t.Errorf("request %d:\n got %s\nwant %s", i+1, got, compact(t, want[i]))
		}
	}
	ev := s.Events(run, f.Output)
	if len(ev) != 3 || ev[1][f.TimeProp] != "10" || ev[1][f.ODProp] != "0.42" || ev[1][f.NoteProp] != "bubbles" || ev[2][f.NoteProp] != "" {
		t.Fatalf("events in the run: %+v", ev)
	}
}

func TestPlateRowsGoToTheirWellsRun(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	var runs []string
	for _, n := range []string{"1", "2", "3", "4"} {
		runs = append(runs, s.AddFixtureRun(f, "Transfer [4x1] "+n, 50))
	}
	spec := "[" + origin(f, runs[0]) + "," + origin(f, runs[1]) + "," + origin(f, runs[2]) + "," + origin(f, runs[3]) + "]"
	client := start(t, s)
	err := client.Push(context.Background(), sdk.PushRequest{
		UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", &sdk.Plate{Rows: 4, Columns: 1}, spec),
		Rows: rows(t,
			`{"index":2,"data":{"timeElapsed":0,"odMeasured":0.3}}`,
			`{"index":0,"data":{"timeElapsed":0,"odMeasured":0.1}}`,
			`{"index":2,"data":{"timeElapsed":5,"odMeasured":0.35}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"batchData":[{"resourceDefId":"res-readings","propertyTypeId":"prop-time","runIds":["` + runs[0] + `"],"values":["0"],"append":true}]}`,
		`{"batchData":[{"resourceDefId":"res-readings","propertyTypeId":"prop-od","runIds":["` + runs[0] + `"],"eventGroupId":"eg-` + runs[0] + `-res-readings","values":[{"eventId":"0","value":"0.1"}]}]}`,
		`{"batchData":[{"resourceDefId":"res-readings","propertyTypeId":"prop-time","runIds":["` + runs[2] + `"],"values":["0","5"],"append":true}]}`,
		`{"batchData":[{"resourceDefId":"res-readings","propertyTypeId":"prop-od","runIds":["` + runs[2] + `"],"eventGroupId":"eg-` + runs[2] + `-res-readings","values":[{"eventId":"0","value":"0.3"},{"eventId":"1","value":"0.35"}]}]}`,
	}
	bodies := s.BatchRequests()
	if len(bodies) != len(want) {
		t.Fatalf("%d requests, want %d", len(bodies), len(want))
	}
	for i := range want {
		if got := compact(t, string(bodies[i])); got != compact(t, want[i]) {
			t.Errorf("request %d:\n got %s\nwant %s", i+1, got, compact(t, want[i]))
		}
	}
	if len(s.Events(runs[1], f.Output)) != 0 || len(s.Events(runs[2], f.Output)) != 2 {
		t.Fatal("rows landed in the wrong wells' runs")
	}
}

func TestOutcomes(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	single := trigger("riffyn", nil, origin(f, run))
	plate := trigger("riffyn", &sdk.Plate{Rows: 2, Columns: 1}, "["+origin(f, run)+","+origin(f, run)+"]")
	good := `{"data":{"timeElapsed":1}}`
	client := start(t, s)

	tests := []struct {
		name    string
		trigger *sdk.StoredTrigger
		rows    []string
		fail    []int
		is      error
		message string
	}{
		{"other source", trigger("control-tower.api", nil, `{"endpoint":"/triggers"}`), []string{good}, nil, sdk.ErrSkipped, `"control-tower.api", not riffyn`},
		{"unknown trigger", nil, []string{good}, nil, sdk.ErrSkipped, "unknown"},
		{"missing key column", single, []string{good, `{"data":{"odMeasured":1}}`}, nil, sdk.ErrPermanent, `rows[1] lacks the key column "timeElapsed"`},
		{"null key column", single, []string{`{"data":{"timeElapsed":null,"odMeasured":1}}`}, nil, sdk.ErrPermanent, `rows[0] has no value for the key column "timeElapsed"`},
		{"empty key column", single, []string{`{"data":{"timeElapsed":"","odMeasured":1}}`}, nil, sdk.ErrPermanent, `rows[0] has no value for the key column "timeElapsed"`},
		{"unknown property", single, []string{`{"data":{"timeElapsed":1,"colour":"red"}}`}, nil, sdk.ErrDelivered, `ignored keys that are not properties of output "Readings": colour`},
		{"index beyond plate", plate, []string{`{"index":2,"data":{"timeElapsed":1}}`}, nil, sdk.ErrPermanent, "index 2 is beyond the plate's 2 wells"},
		{"no index on a plate", plate, []string{good}, nil, sdk.ErrPermanent, "has no index"},
		{"unknown run", trigger("riffyn", nil, origin(f, "run-gone")), []string{good}, nil, sdk.ErrPermanent, "Invalid run ID"},
		{"riffyn 503", single, []string{good}, []int{503, 503, 503, 503}, nil, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.FailNext(tt.fail...)
			err := client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: tt.trigger, Rows: rows(t, tt.rows...)})
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("got %v, want an error containing %q", err, tt.message)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("%v does not match %v", err, tt.is)
			}
			if tt.is == nil && (errors.Is(err, sdk.ErrPermanent) || errors.Is(err, sdk.ErrSkipped) || errors.Is(err, sdk.ErrDelivered)) {
				t.Fatalf("a Riffyn outage must be retryable: %v", err)
			}
		})
	}
}

func TestInfoDeclaresTheConfiguration(t *testing.T) {
	m, err := sdktest.NewService().ConnectPusher(t, pusher.New(), sdktest.Options{}).Manifest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys := m.Config
	if len(keys) != 3 || keys[0].Name != "API_KEY" || !keys[0].Required || !keys[0].Secret || keys[1].Name != "BASE_URL" || keys[1].Default == "" ||
		keys[2].Name != "STRICT_KEYS" || keys[2].Default != "false" || keys[2].Required || keys[2].Secret || !strings.Contains(keys[2].Help, "permanently") {
		t.Fatalf("config keys: %+v", keys)
	}
}

// The contract's checks, with a push of another source's trigger, which a
// working pusher skips.
func TestConformance(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	opts := sdktest.Options{Config: map[string]string{"API_KEY": "key", "BASE_URL": s.BaseURL()}}
	req := sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: trigger("control-tower.api", nil, `{"endpoint":"/triggers"}`), Rows: rows(t, `{"data":{"odMeasured":0.42}}`)}
	sdktest.CheckPusher(t, func() sdk.Pusher { return pusher.New() }, opts, req)
}
