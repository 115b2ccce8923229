package riffyn_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/plugins/riffyn/riffyntest"
)

func client(s *riffyntest.Server) *riffyn.Client {
	return riffyn.New(s.BaseURL(), "key", riffyn.WithRetries(2, time.Millisecond))
}

func TestPaginationIsFollowed(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	for i := range 2345 {
		s.AddExperiment(fmt.Sprint("exp ", i))
	}
	got, err := client(s).Experiments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2345 || got[0].Name != "exp 0" || got[2344].Name != "exp 2344" {
		t.Fatalf("%d experiments (first %+v)", len(got), got[0])
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("experiment %s listed twice", e.ID)
		}
		seen[e.ID] = true
	}
	if n := s.Requests(); n != 3 {
		t.Fatalf("%d requests for 2345 experiments, want 3 pages of 1000", n)
	}
}

func TestEndpoints(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run1 := s.AddFixtureRun(f, "Run 1", 50)
	run2 := s.AddFixtureRun(f, "Run 2", nil)
	c := client(s)
	ctx := context.Background()

	groups, err := c.RunGroups(ctx, f.ExperimentID)
	if err != nil || len(groups) != 1 || groups[0].ID != f.GroupID || groups[0].ActivityID != f.ActivityID {
		t.Fatalf("run groups: %+v %v", groups, err)
	}
	runs, err := c.Runs(ctx, f.ExperimentID, f.GroupID)
	if err != nil || len(runs) != 2 || runs[0].ID != run1 || runs[0].Status != riffyn.RunNew || runs[1].Num != 2 ||
		runs[0].Inputs[0].ResourceName != riffyntest.APIVersion || runs[0].ActivityID != f.ActivityID {
		t.Fatalf("runs: %+v %v", runs, err)
	}
	a, err := c.Activity(ctx, f.ExperimentID, f.ActivityID)
	if err != nil || a.Name != "Plate transfer" || len(a.Outputs) != 2 || a.Outputs[1].Properties[0].Name != "Time elapsed" {
		t.Fatalf("activity: %+v %v", a, err)
	}
	data, err := c.RawData(ctx, f.ExperimentID, f.ActivityID, riffyn.RawDataQuery{
		RunGroupIDs: []string{f.GroupID, f.GroupID}, RunIDs: []string{run1, run2}, RunNums: []int{1, 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := riffyntest.Header(f.ActivityID, f.RobotInput, f.VolumeProp)
	if string(data.DataTables[run1].DataTable[0][h]) != "50" || string(data.DataTables[run2].DataTable[0][h]) != "null" {
		t.Fatalf("raw data: %+v", data.DataTables)
	}
	// The comma form selects the same runs.
	only, err := c.RawData(ctx, f.ExperimentID, f.ActivityID, riffyn.RawDataQuery{RunIDs: []string{run2}})
	if err != nil || len(only.DataTables) != 1 {
		t.Fatalf("filtered raw data: %+v %v", only.DataTables, err)
	}

	yes := true
	created, err := c.AddBatchRunData(ctx, f.ExperimentID, f.ActivityID, []riffyn.BatchItem{{
		ResourceDefID: f.Output, PropertyTypeID: f.TimeProp, RunIDs: []string{run1}, Values: []any{"0", "10"}, Append: &yes,
	}})
	if err != nil || len(created) != 1 || len(created[0].Data) != 2 || created[0].Data[1].EventID != "1" || created[0].EventGroupID == "" {
		t.Fatalf("add events: %+v %v", created, err)
	}
	_, err = c.AddBatchRunData(ctx, f.ExperimentID, f.ActivityID, []riffyn.BatchItem{{
		ResourceDefID: f.Output, PropertyTypeID: f.ODProp, RunIDs: []string{run1}, EventGroupID: created[0].EventGroupID,
		Values: []any{riffyn.EventValue{EventID: "1", Value: "0.42"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ev := s.Events(run1, f.Output)
	if len(ev) != 2 || ev[0][f.TimeProp] != "0" || ev[1][f.TimeProp] != "10" || ev[1][f.ODProp] != "0.42" || ev[0][f.ODProp] != "" {
		t.Fatalf("events: %+v", ev)
	}
}

func TestErrors(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	ctx := context.Background()

	_, err := riffyn.New(s.BaseURL(), "wrong").Experiments(ctx)
	var ae *riffyn.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Message != "Invalid username or password." || riffyn.IsTemporary(err) {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := client(s).Activity(ctx, f.ExperimentID, "nope"); !riffyn.IsNotFound(err) || !errors.As(err, &ae) || ae.Message != "Invalid experiment ID or activity ID" {
		t.Fatalf("unknown activity: %v", err)
	}

	// Reads retry 5xx and 429; they give up after the retries.
	s.FailNext(http.StatusServiceUnavailable, http.StatusTooManyRequests)
	if _, err := client(s).Experiments(ctx); err != nil {
		t.Fatalf("two temporary failures then success: %v", err)
	}
	s.FailNext(500, 500, 500)
	if _, err := client(s).Experiments(ctx); !riffyn.IsTemporary(err) || !errors.As(err, &ae) || ae.Status != 500 {
		t.Fatalf("three 500s: %v", err)
	}
	// Writes are not retried: adding events is not idempotent.
	s.FailNext(502)
	before := s.Requests()
	if _, err := client(s).AddBatchRunData(ctx, f.ExperimentID, f.ActivityID, nil); !riffyn.IsTemporary(err) || s.Requests() != before+1 {
		t.Fatalf("POST with 502: %v after %d requests", err, s.Requests()-before)
	}
	if _, err := riffyn.New("http://127.0.0.1:1/v1", "key", riffyn.WithRetries(0, 0)).Experiments(ctx); !riffyn.IsTemporary(err) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string][2]string{
		"Plate transfer":     {"PlateTransfer", "plateTransfer"},
		"OD measured":        {"OdMeasured", "odMeasured"},
		"LED 395nm setpoint": {"Led395NmSetpoint", "led395NmSetpoint"},
		"Time elapsed":       {"TimeElapsed", "timeElapsed"},
		"volume (uL)":        {"VolumeUl", "volumeUl"},
		"serial dilution":    {"SerialDilution", "serialDilution"},
	} {
		if got := riffyn.PascalCase(in); got != want[0] {
			t.Errorf("PascalCase(%q) = %q, want %q", in, got, want[0])
		}
		if got := riffyn.CamelCase(in); got != want[1] {
			t.Errorf("CamelCase(%q) = %q, want %q", in, got, want[1])
		}
	}
}
