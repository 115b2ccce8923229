package pusher_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/routinglayer/routing/plugins/riffyn/riffyntest"
	"github.com/routinglayer/routing/sdk"
)

// Rows as the service layer's relays post them: the plate reader's
// (timeElapsed, absorbance, error) and the bioreactor's (dozens of
// columns). Keys that are not properties of the run's output are ignored
// and named once per push, in the log and in the delivery's note.

const plateReaderRow = `{"data":{"timeElapsed":"3617","absorbance":"0.4231","error":null},"index":5}`

// plateReader is an 8-well absorbance plate: one run per well.
type plateReader struct {
	step riffyntest.Step
	runs []string
	trig *sdk.StoredTrigger
}

func addPlateReader(s *riffyntest.Server) plateReader {
	st := s.AddStep("Measure absorbance", "TecanSpark/v1alpha1/GBSpark", "Absorbance readings", "Time elapsed", "Absorbance")
	pr := plateReader{step: st}
	var origins []string
	for w := 1; w <= 8; w++ {
		run := s.AddStepRun(st, fmt.Sprintf("Absorbance [8x1] %d", w))
		pr.runs = append(pr.runs, run)
		origins = append(origins, stepOrigin(st, run))
	}
	pr.trig = trigger("riffyn", &sdk.Plate{Rows: 8, Columns: 1}, "["+strings.Join(origins, ",")+"]")
	return pr
}

func stepOrigin(st riffyntest.Step, run string) string {
	return `{"experimentId":"` + st.ExperimentID + `","activityId":"` + st.ActivityID + `","runId":"` + run + `"}`
}

func TestPlateReaderRowIgnoresErrorAndSaysSo(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	pr := addPlateReader(s)
	client, log := startWith(t, s, nil)
	const note = `ignored keys that are not properties of output "Absorbance readings": error`

	err := client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: pr.trig, Rows: rows(t, plateReaderRow)})
	if !errors.Is(err, sdk.ErrDelivered) || err.Error() != note {
		t.Fatalf("push: %v, want delivered with the note %q", err, note)
	}
	run, out := pr.runs[5], pr.step.Output
	want := []string{
		`{"batchData":[{"resourceDefId":"` + out + `","propertyTypeId":"prop-timeElapsed","runIds":["` + run + `"],"values":["3617"],"append":true}]}`,
		`{"batchData":[{"resourceDefId":"` + out + `","propertyTypeId":"prop-absorbance","runIds":["` + run + `"],"eventGroupId":"eg-` + run + `-` + out + `",
			"values":[{"eventId":"0","value":"0.4231"}]}]}`,
	}
	bodies := s.BatchRequests()
	if len(bodies) != len(want) {
		t.Fatalf("%d add-batch-run-data requests, want %d: %s", len(bodies), len(want), bodies)
	}
	for i := range want {
		if got := compact(t, string(bodies[i])); got != compact(t, want[i]) {
			t.Errorf("request %d:\n got %s\nwant %s", i+1, got, compact(t, want[i]))
		}
	}
	if ev := s.Events(run, out); !reflect.DeepEqual(ev, []map[string]string{{"prop-timeElapsed": "3617", "prop-absorbance": "0.4231"}}) {
		t.Fatalf("events of well 5's run: %+v", ev)
	}
	for w, other := range pr.runs {
		if w != 5 && len(s.Events(other, out)) != 0 {
			t.Fatalf("well %d's run got events", w)
		}
	}
	if lines := log.lines("ignored"); len(lines) != 1 || !strings.Contains(lines[0], `output="Absorbance readings" keys=error`) {
		t.Fatalf("log lines about ignored keys: %q", lines)
	}

	// A whole plate read in one push: error is named once, in one line.
	err = client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: pr.trig, Rows: rows(t,
		`{"data":{"timeElapsed":"3620","absorbance":"0.1","error":null},"index":0}`,
		`{"data":{"timeElapsed":"3620","absorbance":"0.2","error":null},"index":1}`,
		`{"data":{"timeElapsed":"3620","absorbance":"0.4","error":null},"index":5}`)})
	if !errors.Is(err, sdk.ErrDelivered) || err.Error() != note {
		t.Fatalf("push: %v, want delivered with the note %q", err, note)
	}
	if lines := log.lines("ignored"); len(lines) != 2 {
		t.Fatalf("%d log lines about ignored keys after two pushes, want 2: %q", len(lines), lines)
	}
	if ev := s.Events(run, out); len(ev) != 2 || ev[1]["prop-absorbance"] != "0.4" || len(s.Events(pr.runs[1], out)) != 1 {
		t.Fatalf("events of well 5's run: %+v", ev)
	}
}

// chiBioColumns are the keys the bioreactor relay sends, in its order.
var chiBioColumns = strings.Fields(`timeElapsed odMeasured odSetpoint odZeroSetpoint thermostatSetpoint heatingRate
	internalAirTemp externalAirTemp mediaTemp optGenActInt pump1Rate pump2Rate pump3Rate pump4Rate mediaVol
	stirringRate led395NmSetpoint led457NmSetpoint led500NmSetpoint led523NmSetpoint led595NmSetpoint
	led623NmSetpoint led6500KSetpoint laserSetpoint ledUvInt fp1Base fp1Emit1 fp1Emit2 fp1Emit1Raw fp1Emit2Raw
	fp2Base fp2Emit1 fp2Emit2 fp2Emit1Raw fp2Emit2Raw fp3Base fp3Emit1 fp3Emit2 fp3Emit1Raw fp3Emit2Raw
	customProgParam1 customProgParam2 customProgParam3 customProgStatus zigzagTarget growthRate odRaw error`)

// chiBioRow is a row with every column: values from vals by key, "" for
// the others, null for error.
func chiBioRow(vals map[string]string) string {
	var b strings.Builder
	b.WriteString(`{"data":{`)
	for i, k := range chiBioColumns {
		if i > 0 {
			b.WriteString(",")
		}
		v := `"` + vals[k] + `"`
		if k == "error" {
			v = "null"
		}
		fmt.Fprintf(&b, "%q:%s", k, v)
	}
	b.WriteString("}}")
	return b.String()
}

func TestBioreactorRowWritesItsPropertiesAndIgnoresTheRest(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	st := s.AddStep("Grow culture", "ChiBio/v1alpha1/ChiBio1", "Culture", "Time elapsed", "OD measured", "Media temp", "Growth rate")
	run := s.AddStepRun(st, "Culture 1")
	client, log := startWith(t, s, nil)

	err := client.Push(context.Background(), sdk.PushRequest{
		UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", nil, stepOrigin(st, run)),
		Rows: rows(t,
			chiBioRow(map[string]string{"timeElapsed": "1.85", "odMeasured": "0.0658053740869853", "mediaTemp": "23.17", "growthRate": "0.0", "pump1Rate": "0.0", "fp1Base": "17263.0"}),
			chiBioRow(map[string]string{"timeElapsed": "182.01", "odMeasured": "0.0896", "mediaTemp": "29.75", "growthRate": ""})),
	})
	var ignored []string
	for _, k := range chiBioColumns {
		if k != "timeElapsed" && k != "odMeasured" && k != "mediaTemp" && k != "growthRate" {
			ignored = append(ignored, k)
		}
	}
	note := `ignored keys that are not properties of output "Culture": ` + strings.Join(ignored, ", ")
	if len(ignored) != 44 || !errors.Is(err, sdk.ErrDelivered) || err.Error() != note {
		t.Fatalf("push: %v\nwant delivered with the note %q", err, note)
	}
	want := []map[string]string{
		{"prop-timeElapsed": "1.85", "prop-odMeasured": "0.0658053740869853", "prop-mediaTemp": "23.17", "prop-growthRate": "0.0"},
		{"prop-timeElapsed": "182.01", "prop-odMeasured": "0.0896", "prop-mediaTemp": "29.75"},
	}
	if ev := s.Events(run, st.Output); !reflect.DeepEqual(ev, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", ev, want)
	}
	if lines := log.lines("ignored"); len(lines) != 1 || !strings.Contains(lines[0], strings.Join(ignored, ", ")) {
		t.Fatalf("log lines about ignored keys: %q", lines)
	}
}

func TestNullAndEmptyValuesAreNotWritten(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	client := start(t, s)
	err := client.Push(context.Background(), sdk.PushRequest{
		UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", nil, origin(f, run)),
		Rows: rows(t,
			`{"data":{"timeElapsed":0,"odMeasured":null,"note":""}}`,
			`{"data":{"timeElapsed":5,"odMeasured":0.2,"note":null}}`,
			`{"data":{"timeElapsed":10,"odMeasured":"","note":"ok"}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	bodies := s.BatchRequests()
	want := `{"batchData":[
		{"resourceDefId":"res-readings","propertyTypeId":"prop-od","runIds":["` + run + `"],"eventGroupId":"eg-` + run + `-res-readings","values":[{"eventId":"1","value":"0.2"}]},
		{"resourceDefId":"res-readings","propertyTypeId":"prop-note","runIds":["` + run + `"],"eventGroupId":"eg-` + run + `-res-readings","values":[{"eventId":"2","value":"ok"}]}]}`
	if len(bodies) != 2 || compact(t, string(bodies[1])) != compact(t, want) {
		t.Fatalf("requests: %s\nwant second %s", bodies, compact(t, want))
	}
	ev := s.Events(run, f.Output)
	if !reflect.DeepEqual(ev, []map[string]string{
		{f.TimeProp: "0"}, {f.TimeProp: "5", f.ODProp: "0.2"}, {f.TimeProp: "10", f.NoteProp: "ok"},
	}) {
		t.Fatalf("events: %+v", ev)
	}

	// Only null and empty values besides the key: the events, nothing more.
	err = client.Push(context.Background(), sdk.PushRequest{
		UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", nil, origin(f, run)),
		Rows: rows(t, `{"data":{"timeElapsed":15,"odMeasured":null,"note":""}}`),
	})
	if err != nil || len(s.BatchRequests()) != 3 {
		t.Fatalf("push: %v; %d requests, want 3", err, len(s.BatchRequests()))
	}
	if ev := s.Events(run, f.Output); len(ev) != 4 || !reflect.DeepEqual(ev[3], map[string]string{f.TimeProp: "15"}) {
		t.Fatalf("events: %+v", ev)
	}
}

// Rows are checked before anything is written: a plate whose second well
// has a row without the key column writes nothing.
func TestMissingKeyColumnIsPermanentAndWritesNothing(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	pr := addPlateReader(s)
	client := start(t, s)
	err := client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: pr.trig, Rows: rows(t,
		`{"data":{"timeElapsed":"10","absorbance":"0.3","error":null},"index":0}`,
		`{"data":{"absorbance":"0.5","error":null},"index":3}`)})
	want := `rows[1] lacks the key column "timeElapsed" (the first property of output "Absorbance readings")`
	if !errors.Is(err, sdk.ErrPermanent) || err.Error() != want {
		t.Fatalf("push: %v, want permanent %q", err, want)
	}
	if n := len(s.BatchRequests()); n != 0 {
		t.Fatalf("%d add-batch-run-data requests, want none", n)
	}
}

func TestStrictKeysRefuseUnknownKeys(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	pr := addPlateReader(s)
	client, log := startWith(t, s, map[string]string{"STRICT_KEYS": "true"})

	err := client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: pr.trig, Rows: rows(t, plateReaderRow)})
	want := `rows[0]: "error" is not a property of output "Absorbance readings" (it has timeElapsed, absorbance); STRICT_KEYS refuses such rows`
	if !errors.Is(err, sdk.ErrPermanent) || err.Error() != want {
		t.Fatalf("push: %v, want permanent %q", err, want)
	}
	if n := len(s.BatchRequests()); n != 0 || len(log.lines("ignored")) != 0 {
		t.Fatalf("%d add-batch-run-data requests and log %q, want none", n, log.lines("ignored"))
	}

	err = client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: pr.trig,
		Rows: rows(t, `{"data":{"timeElapsed":"3617","absorbance":"0.4231"},"index":5}`)})
	if err != nil || len(s.Events(pr.runs[5], pr.step.Output)) != 1 {
		t.Fatalf("a row of properties only: %v, events %+v", err, s.Events(pr.runs[5], pr.step.Output))
	}
}

// The note names at most 50 keys; the log line names them all.
func TestNoteOfManyIgnoredKeysIsBounded(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	client, log := startWith(t, s, nil)
	var b strings.Builder
	b.WriteString(`{"data":{"timeElapsed":1`)
	for i := range 60 {
		fmt.Fprintf(&b, `,"extra%d":%d`, i, i)
	}
	b.WriteString("}}")
	err := client.Push(context.Background(), sdk.PushRequest{UUID: "t1", Attempt: 1, Trigger: trigger("riffyn", nil, origin(f, run)), Rows: rows(t, b.String())})
	if !errors.Is(err, sdk.ErrDelivered) || !strings.HasSuffix(err.Error(), ", extra49 and 10 more") || strings.Contains(err.Error(), "extra50") {
		t.Fatalf("push: %v", err)
	}
	if lines := log.lines("ignored"); len(lines) != 1 || !strings.Contains(lines[0], "extra58, extra59") {
		t.Fatalf("log lines about ignored keys: %q", lines)
	}
}
