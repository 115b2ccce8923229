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
