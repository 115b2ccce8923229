// Package riffyntest is a fake Riffyn Nexus API for tests, built from the
// API's documented shapes: list envelopes with meta and links, "_id" ids,
// limit/offset pagination, raw run data with comma-separated or repeated
// filters, add-batch-run-data with event ids and event groups, 401 without
// the api-key header and 404 with an error body for unknown ids. A test
// builds experiments, activities and runs, starts and stops runs, and
// inspects the data written to them.
package riffyntest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/routinglayer/routing/plugins/riffyn/riffyn"
)

// Server is the fake API. Its URL plus "/v1" is the client's base URL.
type Server struct {
	*httptest.Server
	// APIKey is the key requests must carry.
	APIKey string

	mu          sync.Mutex
	nextID      int
	experiments []riffyn.Experiment
	groups      map[string][]riffyn.RunGroup // by experiment
	runs        map[string][]*riffyn.Run     // by run group
	activities  map[string]riffyn.Activity
	inputs      map[string]map[string]any     // run -> header -> value
	events      map[string]map[string]*events // run -> resourceDef -> events
	batches     []json.RawMessage
	failures    []int // statuses to answer with next, in order
	requests    int
}

type events struct {
	groupID string
	rows    []map[string]string // propertyTypeId -> value, per event
}

// NewServer starts a fake API closed when the test ends.
func NewServer(tb testing.TB, apiKey string) *Server {
	s := &Server{
		APIKey:     apiKey,
		groups:     map[string][]riffyn.RunGroup{},
		runs:       map[string][]*riffyn.Run{},
		activities: map[string]riffyn.Activity{},
		inputs:     map[string]map[string]any{},
		events:     map[string]map[string]*events{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

// BaseURL is the client's base URL.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

func (s *Server) id(prefix string) string {
	s.nextID++
	return fmt.Sprintf("%s%04d", prefix, s.nextID)
}

// AddExperiment adds an experiment and returns its id.
func (s *Server) AddExperiment(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := riffyn.Experiment{ID: s.id("exp"), Name: name}
	s.experiments = append(s.experiments, e)
	return e.ID
}

// AddActivity adds an activity as given (ids included).
func (s *Server) AddActivity(a riffyn.Activity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activities[a.ID] = a
}

// AddRunGroup adds a run group of an activity to an experiment.
func (s *Server) AddRunGroup(experimentID, activityID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := riffyn.RunGroup{ID: s.id("grp"), ExperimentID: experimentID, ActivityID: activityID}
	s.groups[experimentID] = append(s.groups[experimentID], g)
	return g.ID
}

// AddRun adds a run (status new) to a group; its inputs name the
// activity's input resources. It returns the run's id.
func (s *Server) AddRun(groupID, name string, inputs []riffyn.RunResourceDef) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g riffyn.RunGroup
	for _, gs := range s.groups {
		for _, x := range gs {
			if x.ID == groupID {
				g = x
			}
		}
	}
	r := &riffyn.Run{
		ID: s.id("run"), Name: name, Status: riffyn.RunNew, Num: len(s.runs[groupID]) + 1,
		ActivityID: g.ActivityID, ExperimentID: g.ExperimentID, GroupID: groupID, Inputs: inputs,
	}
	s.runs[groupID] = append(s.runs[groupID], r)
	return r.ID
}

// SetInput sets a run's value of an input property.
func (s *Server) SetInput(runID, activityID, resourceDefID, propertyID string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inputs[runID] == nil {
		s.inputs[runID] = map[string]any{}
	}
	s.inputs[runID][Header(activityID, resourceDefID, propertyID)] = value
}

// Header is the raw data column of an input property's value.
func Header(activityID, resourceDefID, propertyID string) string {
	return activityID + " | input | " + resourceDefID + " | " + propertyID + " | value"
}

// SetStatus sets a run's status (riffyn.RunRunning to start it).
func (s *Server) SetStatus(runID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.findRun(runID); r != nil {
		r.Status = status
	}
}

func (s *Server) findRun(id string) *riffyn.Run {
	for _, rs := range s.runs {
		for _, r := range rs {
			if r.ID == id {
				return r
			}
		}
	}
	return nil
}

// Events returns the events written to a run's resource: per event, the
// values by property id.
func (s *Server) Events(runID, resourceDefID string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.events[runID][resourceDefID]
	if ev == nil {
		return nil
	}
	out := make([]map[string]string, len(ev.rows))
	for i, r := range ev.rows {
		out[i] = map[string]string{}
		for k, v := range r {
			out[i][k] = v
		}
	}
	return out
}

// BatchRequests returns the bodies of every add-batch-run-data request.
func (s *Server) BatchRequests() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.batches...)
}

// Requests counts the requests served.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next requests answer with these statuses, in order.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, statuses...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.failures) > 0 {
		status := s.failures[0]
		s.failures = s.failures[1:]
		writeError(w, status, "injected failure")
		return
	}
	if r.Header.Get("api-key") != s.APIKey {
		writeError(w, http.StatusUnauthorized, "Invalid username or password.")
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1"), "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "experiments":
		s.list(w, r, s.experiments)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "experiment" && parts[2] == "run-groups":
		if !s.hasExperiment(parts[1]) {
			writeError(w, http.StatusNotFound, "Invalid experiment ID")
			return
		}
		s.list(w, r, s.groups[parts[1]])
	case r.Method == http.MethodGet && len(parts) == 5 && parts[0] == "experiment" && parts[2] == "run-group" && parts[4] == "runs":
		runs, ok := s.runs[parts[3]]
		if !s.hasExperiment(parts[1]) || !ok {
			writeError(w, http.StatusNotFound, "Invalid experiment ID or run group ID")
			return
		}
		out := make([]riffyn.Run, len(runs))
		for i, run := range runs {
			out[i] = *run
		}
		s.list(w, r, out)
	case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "process" && parts[2] == "activity":
		a, ok := s.activities[parts[3]]
		if !ok || !(s.hasExperiment(parts[1]) || parts[1] == a.TopGroupID) {
			writeError(w, http.StatusNotFound, "Invalid experiment ID or activity ID")
			return
		}
		writeJSON(w, http.StatusOK, a)
	case r.Method == http.MethodGet && len(parts) == 6 && parts[0] == "experiment" && parts[2] == "step" && parts[4] == "data" && parts[5] == "raw":
		s.rawData(w, r, parts[1], parts[3])
	case r.Method == http.MethodPost && len(parts) == 5 && parts[0] == "experiment" && parts[2] == "activity" && parts[4] == "add-batch-run-data":
		s.addBatch(w, r, parts[1], parts[3])
	default:
		writeError(w, http.StatusNotFound, "Not found")
	}
}

func (s *Server) hasExperiment(id string) bool {
	for _, e := range s.experiments {
		if e.ID == id {
			return true
		}
	}
	return false
}

// list answers with one page of items in the list envelope.
func (s *Server) list(w http.ResponseWriter, r *http.Request, items any) {
	all, _ := json.Marshal(items)
	var raw []json.RawMessage
	_ = json.Unmarshal(all, &raw)
	q := r.URL.Query()
	limit, offset := 100, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, 1000)
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		offset = v
	}
	page := []json.RawMessage{}
	if offset < len(raw) {
		page = raw[offset:min(offset+limit, len(raw))]
	}
	link := func(off int) string {
		return fmt.Sprintf("http://%s%s?limit=%d&offset=%d", r.Host, r.URL.Path, limit, off)
	}
	links := riffyn.Links{First: link(0), Last: link(max(0, (len(raw)-1)/limit*limit))}
	if offset+limit < len(raw) {
		links.Next = link(offset + limit)
	}
	if offset > 0 {
		links.Prev = link(max(0, offset-limit))
	}
	writeJSON(w, http.StatusOK, riffyn.List[json.RawMessage]{
		Meta:  riffyn.Meta{TotalCount: len(raw), TotalPages: (len(raw) + limit - 1) / limit},
		Links: links,
		Data:  page,
	})
}

// splitParam reads a list parameter given as repeated keys, comma
// separated values, or both.
func splitParam(q map[string][]string, key string) []string {
	var out []string
	for _, v := range q[key] {
		for p := range strings.SplitSeq(v, ",") {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) rawData(w http.ResponseWriter, r *http.Request, experimentID, activityID string) {
	a, ok := s.activities[activityID]
	if !s.hasExperiment(experimentID) || !ok {
		writeError(w, http.StatusNotFound, "Invalid experiment ID or activity ID")
		return
	}
	q := r.URL.Query()
	rgid, rid, rnum := splitParam(q, "rgid"), splitParam(q, "rid"), splitParam(q, "rnum")
	tables := map[string]riffyn.DataTable{}
	for _, runs := range s.runs {
		for _, run := range runs {
			if run.ExperimentID != experimentID || run.ActivityID != activityID ||
				(len(rgid) > 0 && !contains(rgid, run.GroupID)) ||
				(len(rid) > 0 && !contains(rid, run.ID)) ||
				(len(rnum) > 0 && !contains(rnum, strconv.Itoa(run.Num))) {
				continue
			}
			row := map[string]json.RawMessage{}
			for _, in := range a.Inputs {
				for _, p := range in.Properties {
					h := Header(activityID, in.ID, p.ID)
					v, _ := json.Marshal(s.inputs[run.ID][h]) // null when unset
					row[h] = v
				}
			}
			tables[run.ID] = riffyn.DataTable{RunID: run.ID, GroupID: run.GroupID, DataTable: []map[string]json.RawMessage{row}}
		}
	}
	writeJSON(w, http.StatusOK, riffyn.DataTables{AllHeaderMeta: []json.RawMessage{}, DataTables: tables, DataTablesDoc: tables})
}

// batchItem is an add-batch-run-data item as the fake reads it: values
// are strings or {eventId, value} objects.
type batchItem struct {
	ResourceDefID  string            `json:"resourceDefId"`
	PropertyTypeID string            `json:"propertyTypeId"`
	RunIDs         []string          `json:"runIds"`
	RunGroupID     string            `json:"runGroupId"`
	EventGroupID   string            `json:"eventGroupId"`
	Values         []json.RawMessage `json:"values"`
	Append         *bool             `json:"append"`
}

func (s *Server) addBatch(w http.ResponseWriter, r *http.Request, experimentID, activityID string) {
	a, ok := s.activities[activityID]
	if !s.hasExperiment(experimentID) || !ok {
		writeError(w, http.StatusNotFound, "Invalid experiment ID or activity ID")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		BatchData []batchItem `json:"batchData"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.BatchData == nil {
		writeError(w, http.StatusBadRequest, "body must be {\"batchData\": [...]}")
		return
	}
	s.batches = append(s.batches, raw)
	out := []runData{}
	for _, it := range body.BatchData {
		res, err := s.addItem(a, it)
		if err != "" {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		out = append(out, res...)
	}
	writeJSON(w, http.StatusOK, out)
}

// runData is an element of the add-batch-run-data answer, with event ids
// as JSON numbers as the API numbers them.
type runData struct {
	ResourceDefID  string      `json:"resourceDefId"`
	PropertyTypeID string      `json:"propertyTypeId"`
	EventGroupID   string      `json:"eventGroupId"`
	RunIDs         []string    `json:"runIds"`
	Data           []eventData `json:"data"`
	Append         *bool       `json:"append,omitempty"`
}

type eventData struct {
	EventID int    `json:"eventId"`
	Value   string `json:"value"`
}

// addItem applies one batch item; a non-empty string is the error.
func (s *Server) addItem(a riffyn.Activity, it batchItem) ([]runData, string) {
	if !hasProperty(a, it.ResourceDefID, it.PropertyTypeID) {
		return nil, fmt.Sprintf("Invalid resourceDefId %q or propertyTypeId %q", it.ResourceDefID, it.PropertyTypeID)
	}
	if len(it.RunIDs) == 0 {
		return nil, "runIds or runGroupId is required"
	}
	var out []runData
	for _, runID := range it.RunIDs {
		if s.findRun(runID) == nil {
			return nil, fmt.Sprintf("Invalid run ID %q", runID)
		}
		if s.events[runID] == nil {
			s.events[runID] = map[string]*events{}
		}
		ev := s.events[runID][it.ResourceDefID]
		if ev == nil {
			ev = &events{groupID: fmt.Sprintf("eg-%s-%s", runID, it.ResourceDefID)}
			s.events[runID][it.ResourceDefID] = ev
		}
		res := runData{ResourceDefID: it.ResourceDefID, PropertyTypeID: it.PropertyTypeID, EventGroupID: ev.groupID, RunIDs: []string{runID}, Append: it.Append, Data: []eventData{}}
		if it.EventGroupID != "" {
			if it.EventGroupID != ev.groupID {
				return nil, fmt.Sprintf("Invalid eventGroupId %q", it.EventGroupID)
			}
			for _, v := range it.Values {
				var ev2 struct {
					EventID string `json:"eventId"`
					Value   string `json:"value"`
				}
				if err := json.Unmarshal(v, &ev2); err != nil || ev2.EventID == "" {
					return nil, "with eventGroupId, values must be {eventId, value} objects"
				}
				n, err := strconv.Atoi(ev2.EventID)
				if err != nil || n < 0 || n >= len(ev.rows) {
					return nil, fmt.Sprintf("Invalid eventId %q: the event group has %d events", ev2.EventID, len(ev.rows))
				}
				ev.rows[n][it.PropertyTypeID] = ev2.Value
				res.Data = append(res.Data, eventData{EventID: n, Value: ev2.Value})
			}
		} else {
			if it.Append == nil || !*it.Append {
				ev.rows = nil // overwrite
			}
			for _, v := range it.Values {
				var str string
				if err := json.Unmarshal(v, &str); err != nil {
					return nil, "values must be strings"
				}
				ev.rows = append(ev.rows, map[string]string{it.PropertyTypeID: str})
				res.Data = append(res.Data, eventData{EventID: len(ev.rows) - 1, Value: str})
			}
		}
		out = append(out, res)
	}
	return out, ""
}

func hasProperty(a riffyn.Activity, resourceDefID, propertyID string) bool {
	for _, res := range append(append([]riffyn.ResourceDef{}, a.Inputs...), a.Outputs...) {
		if res.ID != resourceDefID {
			continue
		}
		for _, p := range res.Properties {
			if p.ID == propertyID {
				return true
			}
		}
	}
	return false
}
