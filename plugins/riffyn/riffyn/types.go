package riffyn

import (
	"encoding/json"
	"fmt"
)

// Wire types of the Riffyn Nexus API subset the plugins use. Field names
// follow the API exactly: ids are "_id"; opaque fields stay raw.

// Meta is the "meta" object of a list envelope.
type Meta struct {
	TotalCount int `json:"total-count"`
	TotalPages int `json:"total-pages"`
}

// Links is the "links" object of a list envelope; entries are URLs.
type Links struct {
	First string `json:"first,omitempty"`
	Prev  string `json:"prev,omitempty"`
	Next  string `json:"next,omitempty"`
	Last  string `json:"last,omitempty"`
}

// List is the envelope of list endpoints.
type List[T any] struct {
	Meta  Meta  `json:"meta"`
	Links Links `json:"links"`
	Data  []T   `json:"data"`
}

// Experiment is an experiment; the plugins read only its id.
type Experiment struct {
	ID      string          `json:"_id"`
	Name    string          `json:"name,omitempty"`
	Created json.RawMessage `json:"created,omitempty"`
}

// RunGroup is a group of runs of one activity in an experiment.
type RunGroup struct {
	ID           string `json:"_id"`
	Name         string `json:"name,omitempty"`
	ExperimentID string `json:"experimentId,omitempty"`
	ActivityID   string `json:"activityId,omitempty"`
}

// Run statuses.
const (
	RunNew       = "new"
	RunRunning   = "running"
	RunStopped   = "stopped"
	RunCompleted = "completed"
	RunDeleted   = "deleted"
)

// Run is one run of an activity.
type Run struct {
	ID           string           `json:"_id"`
	Name         string           `json:"name"`
	Status       string           `json:"status"`
	Num          int              `json:"num"`
	ActivityID   string           `json:"activityId"`
	ExperimentID string           `json:"experimentId,omitempty"`
	GroupID      string           `json:"groupId"`
	Inputs       []RunResourceDef `json:"inputs,omitempty"`
	Outputs      []RunResourceDef `json:"outputs,omitempty"`
}

// RunResourceDef is one input or output resource of a run.
type RunResourceDef struct {
	ResourceID    string `json:"resourceId,omitempty"`
	ResourceName  string `json:"resourceName"`
	ResourceDefID string `json:"resourceDefId"`
}

// Activity is a process step with its input and output resources.
type Activity struct {
	ID         string          `json:"_id"`
	Name       string          `json:"name"`
	TopGroupID string          `json:"topGroupId,omitempty"`
	Inputs     []ResourceDef   `json:"inputs"`
	Outputs    []ResourceDef   `json:"outputs"`
	Created    json.RawMessage `json:"created,omitempty"`
}

// ResourceDef is one input or output of an activity.
type ResourceDef struct {
	ID         string        `json:"_id"`
	Name       string        `json:"name"`
	Direction  string        `json:"direction,omitempty"`
	Properties []PropertyDef `json:"properties"`
}

// PropertyDef is one property (data column) of a resource.
type PropertyDef struct {
	ID   string `json:"_id"`
	Name string `json:"name"`
}

// DataTables is the answer of the raw data endpoint.
type DataTables struct {
	AllHeaderMeta []json.RawMessage    `json:"allHeaderMeta,omitempty"`
	DataTables    map[string]DataTable `json:"datatables"`
	DataTablesDoc map[string]DataTable `json:"datatables-doc,omitempty"`
}

// DataTable holds one run's rows, each keyed by column header.
type DataTable struct {
	RunID     string                       `json:"runId"`
	GroupID   string                       `json:"groupId"`
	DataTable []map[string]json.RawMessage `json:"datatable"`
}

// BatchItem is one item of add-batch-run-data.
type BatchItem struct {
	ResourceDefID  string   `json:"resourceDefId"`
	PropertyTypeID string   `json:"propertyTypeId"`
	RunIDs         []string `json:"runIds,omitempty"`
	EventGroupID   string   `json:"eventGroupId,omitempty"`
	// Values are strings (one new event each) or EventValue objects.
	Values []any `json:"values"`
	Append *bool `json:"append,omitempty"`
}

// EventValue sets a value of an existing event.
type EventValue struct {
	EventID string `json:"eventId"`
	Value   string `json:"value"`
}

// RunData is one element of the add-batch-run-data answer.
type RunData struct {
	ResourceDefID  string      `json:"resourceDefId,omitempty"`
	PropertyTypeID string      `json:"propertyTypeId,omitempty"`
	EventGroupID   string      `json:"eventGroupId,omitempty"`
	RunIDs         []string    `json:"runIds,omitempty"`
	Data           []EventData `json:"data,omitempty"`
	Append         *bool       `json:"append,omitempty"`
}

// EventData is one event added.
type EventData struct {
	EventID EventID `json:"eventId"`
	Value   any     `json:"value,omitempty"`
}

// EventID is an event id, sent by the API as a JSON number or string.
type EventID string

// UnmarshalJSON accepts a number or a string.
func (e *EventID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = EventID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("eventId: want a number or a string, got %s", b)
	}
	*e = EventID(n.String())
	return nil
}
