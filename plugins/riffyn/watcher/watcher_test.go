package watcher_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
	"github.com/routinglayer/routing/plugins/riffyn/riffyntest"
	"github.com/routinglayer/routing/plugins/riffyn/watcher"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/sdktest"
)

const wait = 30 * time.Second

func options(s *riffyntest.Server) sdktest.Options {
	return sdktest.Options{Config: map[string]string{"API_KEY": "key", "BASE_URL": s.BaseURL(), "POLL_INTERVAL": "20ms"}}
}

// polls waits until the watcher has completed at least n polls that
// started after the call (each poll lists experiments, run groups and
// runs: 3 requests here; one more poll covers a poll under way).
func polls(tb testing.TB, s *riffyntest.Server, n int) {
	tb.Helper()
	target := s.Requests() + 3*(n+1)
	deadline := time.Now().Add(wait)
	for s.Requests() < target {
		if time.Now().After(deadline) {
			tb.Fatalf("the watcher did not poll %d times", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSingleRunBecomesATrigger(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	s.AddRun(f.GroupID, "Water only", []riffyn.RunResourceDef{{ResourceName: "Water", ResourceDefID: f.WaterInput}})
	host := sdktest.NewService()
	host.RunWatcher(t, watcher.New(), options(s))

	polls(t, s, 2)
	if n := len(host.Triggers()); n != 0 {
		t.Fatalf("%d triggers before any run started", n)
	}
	s.SetStatus(run, riffyn.RunRunning)
	got := host.WaitTriggers(t, 1, wait)[0].Trigger
	if got.APIVersion != riffyntest.APIVersion || got.Protocol != "PlateTransfer" || string(got.Spec) != `{"volume":50}` || got.Plate != nil {
		t.Fatalf("trigger: %+v spec %s", got, got.Spec)
	}
	want := `{"experimentId":"` + f.ExperimentID + `","activityId":"` + f.ActivityID + `","runId":"` + run + `"}`
	if got.Metadata.Source != "riffyn" || string(got.Metadata.Spec) != want {
		t.Fatalf("metadata: %s %s", got.Metadata.Source, got.Metadata.Spec)
	}
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 1 {
		t.Fatalf("%d triggers for one started run (the Water input must not trigger)", n)
	}
}

func TestNonAPIVersionInputsAreIgnored(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddRun(f.GroupID, "Water only", []riffyn.RunResourceDef{{ResourceName: "Water", ResourceDefID: f.WaterInput}})
	s.SetStatus(run, riffyn.RunRunning)
	host := sdktest.NewService()
	host.RunWatcher(t, watcher.New(), options(s))
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 0 || len(host.Rejected()) != 0 {
		t.Fatalf("triggers %d, rejections %v, want none", n, host.Rejected())
	}
	if !contains(host.State.Keys(), "run/"+run) {
		t.Fatalf("the run is not recorded as handled: %v", host.State.Keys())
	}
}

func plateRuns(s *riffyntest.Server, f riffyntest.Fixture) []string {
	var ids []string
	for i, v := range []int{50, 50, 100, 100} {
		ids = append(ids, s.AddFixtureRun(f, "Transfer [4x1] "+string(rune('1'+i)), v))
	}
	return ids
}

func checkPlateTrigger(tb testing.TB, got []sdktest.Emitted, f riffyntest.Fixture, runs []string) {
	tb.Helper()
	if len(got) != 1 {
		tb.Fatalf("%d triggers, want one for the plate", len(got))
	}
	tr := got[0].Trigger
	if tr.Plate == nil || tr.Plate.Rows != 4 || tr.Plate.Columns != 1 || string(tr.Spec) != `[{"volume":50},{"volume":50},{"volume":100},{"volume":100}]` {
		tb.Fatalf("plate trigger: plate %+v spec %s", tr.Plate, tr.Spec)
	}
	var origins []struct{ ExperimentID, ActivityID, RunID string }
	if err := json.Unmarshal(tr.Metadata.Spec, &origins); err != nil || len(origins) != 4 {
		tb.Fatalf("metadata spec %s: %v", tr.Metadata.Spec, err)
	}
	for i, o := range origins {
		if o.RunID != runs[i] || o.ExperimentID != f.ExperimentID || o.ActivityID != f.ActivityID {
			tb.Fatalf("metadata spec[%d] = %+v, want run %s", i, o, runs[i])
		}
	}
}

func TestPlateIsAggregatedWhenAllWellsRun(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	runs := plateRuns(s, f)
	host := sdktest.NewService()
	host.RunWatcher(t, watcher.New(), options(s))

	// Started out of order; three of four are not enough.
	for _, i := range []int{2, 0, 3} {
		s.SetStatus(runs[i], riffyn.RunRunning)
	}
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 0 {
		t.Fatalf("%d triggers with 3 of 4 wells running", n)
	}
	s.SetStatus(runs[1], riffyn.RunRunning)
	host.WaitTriggers(t, 1, wait)
	polls(t, s, 3)
	checkPlateTrigger(t, host.Triggers(), f, runs)
}

func TestRestartMidPlateKeepsThePartialWells(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	runs := plateRuns(s, f)
	host := sdktest.NewService()
	first := host.RunWatcher(t, watcher.New(), options(s))
	s.SetStatus(runs[0], riffyn.RunRunning)
	s.SetStatus(runs[1], riffyn.RunRunning)
	polls(t, s, 3)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if !contains(host.State.Keys(), "plate/"+f.ActivityID+"/Transfer/4x1") {
		t.Fatalf("no partial plate in State: %v", host.State.Keys())
	}

	// A new process of the plugin, with the same State.
	host.RunWatcher(t, watcher.New(), options(s))
	s.SetStatus(runs[2], riffyn.RunRunning)
	s.SetStatus(runs[3], riffyn.RunRunning)
	host.WaitTriggers(t, 1, wait)
	polls(t, s, 3)
	checkPlateTrigger(t, host.Triggers(), f, runs)
	for _, k := range host.State.Keys() {
		if k == "plate/"+f.ActivityID+"/Transfer/4x1" {
			t.Fatal("the partial plate is still in State after its trigger")
		}
	}
}

func TestStoppedRunTriggersAgainWhenRestarted(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	host := sdktest.NewService()
	first := host.RunWatcher(t, watcher.New(), options(s))
	s.SetStatus(run, riffyn.RunRunning)
	host.WaitTriggers(t, 1, wait)

	// A restart of the plugin while the run still runs: nothing new.
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	host.RunWatcher(t, watcher.New(), options(s))
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 1 {
		t.Fatalf("%d triggers after a plugin restart, want still 1", n)
	}

	s.SetStatus(run, riffyn.RunStopped)
	polls(t, s, 2)
	s.SetStatus(run, riffyn.RunRunning)
	got := host.WaitTriggers(t, 2, wait)
	if got[0].Key == got[1].Key || got[0].UUID == got[1].UUID {
		t.Fatalf("restarted run reused key %s", got[0].Key)
	}
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 2 {
		t.Fatalf("%d triggers after stop and start, want 2", n)
	}
}

func TestOutageIsRetriedWithoutLoss(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	f := s.AddFixture()
	run := s.AddFixtureRun(f, "Run 1", 50)
	host := sdktest.NewService()
	host.RunWatcher(t, watcher.New(), options(s))
	polls(t, s, 1)
	// Each failed poll costs the client's retries (0.5 s + 1 s + 2 s).
	s.FailNext(503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	s.SetStatus(run, riffyn.RunRunning)
	host.WaitTriggers(t, 1, 60*time.Second)
	polls(t, s, 3)
	if n := len(host.Triggers()); n != 1 {
		t.Fatalf("%d triggers after an outage, want 1", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The contract's checks: Info, configuration errors, the API key marked
// secret and never logged, cancellation.
func TestConformance(t *testing.T) {
	s := riffyntest.NewServer(t, "key")
	sdktest.CheckWatcher(t, func() sdk.Watcher { return watcher.New() }, options(s))
}
