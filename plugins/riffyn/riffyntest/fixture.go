package riffyntest

import "github.com/routinglayer/routing/plugins/riffyn/riffyn"

// Fixture is an experiment with one "Plate transfer" activity whose input
// resources are an OT-2 (named after its apiVersion, with a Volume
// property) and Water (an ordinary resource); its output "Readings" has the
// key column "Time elapsed", then "OD measured" and "Note".
type Fixture struct {
	ExperimentID, ActivityID, GroupID string
	// Input resource and property ids.
	RobotInput, VolumeProp, WaterInput, AmountProp string
	// Output resource and property ids.
	Output, TimeProp, ODProp, NoteProp string
}

// APIVersion is the fixture's robot input's name.
const APIVersion = "OT-2/v1alpha1"

// AddFixture adds the fixture to s.
func (s *Server) AddFixture() Fixture {
	f := Fixture{
		ActivityID: "act-plate-transfer",
		RobotInput: "res-ot2", VolumeProp: "prop-volume",
		WaterInput: "res-water", AmountProp: "prop-amount",
		Output: "res-readings", TimeProp: "prop-time", ODProp: "prop-od", NoteProp: "prop-note",
	}
	f.ExperimentID = s.AddExperiment("Dilution series")
	s.AddActivity(riffyn.Activity{
		ID: f.ActivityID, Name: "Plate transfer", TopGroupID: "proc-1",
		Inputs: []riffyn.ResourceDef{
			{ID: f.RobotInput, Name: APIVersion, Direction: "input", Properties: []riffyn.PropertyDef{{ID: f.VolumeProp, Name: "Volume"}}},
			{ID: f.WaterInput, Name: "Water", Direction: "input", Properties: []riffyn.PropertyDef{{ID: f.AmountProp, Name: "Amount"}}},
		},
		Outputs: []riffyn.ResourceDef{
			{ID: "res-waste", Name: "Waste", Direction: "output", Properties: []riffyn.PropertyDef{{ID: "prop-mass", Name: "Mass"}}},
			{ID: f.Output, Name: "Readings", Direction: "output", Properties: []riffyn.PropertyDef{
				{ID: f.TimeProp, Name: "Time elapsed"}, {ID: f.ODProp, Name: "OD measured"}, {ID: f.NoteProp, Name: "Note"},
			}},
		},
	})
	f.GroupID = s.AddRunGroup(f.ExperimentID, f.ActivityID)
	return f
}

// Inputs are the run inputs of the fixture's runs.
func (f Fixture) Inputs() []riffyn.RunResourceDef {
	return []riffyn.RunResourceDef{
		{ResourceName: APIVersion, ResourceDefID: f.RobotInput},
		{ResourceName: "Water", ResourceDefID: f.WaterInput},
	}
}

// AddFixtureRun adds a run of the fixture's activity with a volume.
func (s *Server) AddFixtureRun(f Fixture, name string, volume any) string {
	id := s.AddRun(f.GroupID, name, f.Inputs())
	s.SetInput(id, f.ActivityID, f.RobotInput, f.VolumeProp, volume)
	s.SetInput(id, f.ActivityID, f.WaterInput, f.AmountProp, 5)
	return id
}

// Step is an experiment with one activity that has an instrument input
// (named after an apiVersion, without properties) and one output whose
// first property is the key column.
type Step struct {
	ExperimentID, ActivityID, GroupID string
	// Input is the instrument input's resource id.
	Input string
	// Output is the output resource's id.
	Output string
	// Props maps each output property's camelCase name to its id.
	Props map[string]string
}

// AddStep adds an experiment with an activity named activity, an input
// named apiVersion and an output named output with the given properties,
// key column first (e.g. "Time elapsed", "Absorbance"). Property ids are
// "prop-" and the camelCase name.
func (s *Server) AddStep(activity, apiVersion, output string, properties ...string) Step {
	s.mu.Lock()
	key := s.id("")
	s.mu.Unlock()
	st := Step{ActivityID: "act-" + key, Input: "res-in-" + key, Output: "res-out-" + key, Props: map[string]string{}}
	st.ExperimentID = s.AddExperiment(activity)
	var props []riffyn.PropertyDef
	for _, name := range properties {
		id := "prop-" + riffyn.CamelCase(name)
		st.Props[riffyn.CamelCase(name)] = id
		props = append(props, riffyn.PropertyDef{ID: id, Name: name})
	}
	s.AddActivity(riffyn.Activity{
		ID: st.ActivityID, Name: activity, TopGroupID: "proc-" + key,
		Inputs:  []riffyn.ResourceDef{{ID: st.Input, Name: apiVersion, Direction: "input"}},
		Outputs: []riffyn.ResourceDef{{ID: st.Output, Name: output, Direction: "output", Properties: props}},
	})
	st.GroupID = s.AddRunGroup(st.ExperimentID, st.ActivityID)
	return st
}

// AddStepRun adds a run of a step's activity and returns its id.
func (s *Server) AddStepRun(st Step, name string) string {
	s.mu.Lock()
	var apiVersion string
	for _, in := range s.activities[st.ActivityID].Inputs {
		apiVersion = in.Name
	}
	s.mu.Unlock()
	return s.AddRun(st.GroupID, name, []riffyn.RunResourceDef{{ResourceName: apiVersion, ResourceDefID: st.Input}})
}
