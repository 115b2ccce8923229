package triggerintake

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

// API serves the trigger endpoints.
type API struct {
	intake       *Intake
	maxBodyBytes int64
}

// NewAPI returns the trigger API over intake.
func NewAPI(intake *Intake, maxBodyBytes int64) *API {
	return &API{intake: intake, maxBodyBytes: maxBodyBytes}
}

// Routes mounts:
//
//	POST /triggers                   store and publish a trigger
//	GET  /triggers                   list, newest first, filtered and paginated
//	GET  /triggers/{uuid}            one trigger with its status
//	POST /triggers/{uuid}/republish  publish a stored trigger again
func (a *API) Routes(r *mux.Router) {
	r.HandleFunc("/triggers", a.handlePost).Methods(http.MethodPost)
	r.HandleFunc("/triggers", a.handleList).Methods(http.MethodGet)
	r.HandleFunc("/triggers/{uuid}", a.handleGet).Methods(http.MethodGet)
	r.HandleFunc("/triggers/{uuid}/republish", a.handleRepublish).Methods(http.MethodPost)
}

// defaultHTTPMetadata marks triggers posted without metadata.
var defaultHTTPMetadata = sdk.Metadata{Source: "control-tower.api", Spec: json.RawMessage(`{"endpoint":"/triggers"}`)}

func (a *API) handlePost(w http.ResponseWriter, r *http.Request) {
	body, ok := httpapi.ReadJSON(w, r, a.maxBodyBytes)
	if !ok {
		return
	}
	var t sdk.Trigger
	if err := sdk.DecodeStrict(body, &t); err != nil {
		httpapi.WriteInvalid(w, r, http.StatusBadRequest, err)
		return
	}
	if t.Metadata == nil {
		md := defaultHTTPMetadata
		t.Metadata = &md
	}
	stored, created, err := a.intake.Accept(r.Context(), t, SourceHTTP, "")
	switch {
	case errors.Is(err, sdk.ErrInvalid):
		httpapi.WriteInvalid(w, r, http.StatusUnprocessableEntity, err)
	case errors.Is(err, ErrConflict):
		httpapi.WriteProblem(w, r, http.StatusConflict, err.Error()+": post the same content to repeat it, or use another uuid")
	case err != nil:
		writeUnavailable(w, r, err)
	case created:
		w.Header().Set("Location", "/triggers/"+stored.UUID)
		httpapi.WriteJSON(w, http.StatusCreated, stored)
	default:
		httpapi.WriteJSON(w, http.StatusOK, stored)
	}
}

func (a *API) handleGet(w http.ResponseWriter, r *http.Request) {
	t, err := a.intake.Get(r.Context(), mux.Vars(r)["uuid"])
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpapi.WriteProblem(w, r, http.StatusNotFound, "no trigger with uuid "+strconv.Quote(mux.Vars(r)["uuid"]))
	case err != nil:
		writeUnavailable(w, r, err)
	default:
		httpapi.WriteJSON(w, http.StatusOK, t)
	}
}

func (a *API) handleRepublish(w http.ResponseWriter, r *http.Request) {
	uuid := mux.Vars(r)["uuid"]
	_, err := a.intake.store.Requeue(r.Context(), uuid)
	if err == nil {
		a.intake.stored()
		var t sdk.StoredTrigger
		if t, err = a.intake.Get(r.Context(), uuid); err == nil {
			httpapi.WriteJSON(w, http.StatusAccepted, t)
			return
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteProblem(w, r, http.StatusNotFound, "no trigger with uuid "+strconv.Quote(uuid))
		return
	}
	writeUnavailable(w, r, err)
}

type listResponse struct {
	Triggers []sdk.StoredTrigger `json:"triggers"`
	// Next is the cursor of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
}

func (a *API) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpapi.WriteInvalid(w, r, http.StatusBadRequest, err)
		return
	}
	rows, next, err := a.intake.store.ListTriggers(r.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		httpapi.WriteInvalid(w, r, http.StatusBadRequest, &sdk.ValidationError{Fields: []sdk.FieldError{{Field: "cursor", Reason: "is not a cursor from a previous page"}}})
		return
	}
	if err != nil {
		writeUnavailable(w, r, err)
		return
	}
	resp := listResponse{Triggers: make([]sdk.StoredTrigger, 0, len(rows)), Next: next}
	for _, row := range rows {
		t, err := decode(row)
		if err != nil {
			writeUnavailable(w, r, err)
			return
		}
		resp.Triggers = append(resp.Triggers, t)
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// parseFilter reads the list query parameters, naming any bad one.
func parseFilter(r *http.Request) (store.TriggerFilter, error) {
	q := r.URL.Query()
	f := store.TriggerFilter{
		APIVersion: q.Get("apiVersion"),
		Protocol:   q.Get("protocol"),
		Source:     q.Get("source"),
		Status:     store.Status(q.Get("status")),
		Cursor:     q.Get("cursor"),
	}
	var errs []sdk.FieldError
	switch f.Status {
	case "", store.StatusPending, store.StatusPublished, store.StatusUnroutable:
	default:
		errs = append(errs, sdk.FieldError{Field: "status", Reason: "must be pending, published or unroutable"})
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, sdk.FieldError{Field: tp.name, Reason: "must be an RFC 3339 time, e.g. 2026-11-24T10:00:00Z"})
			}
			*tp.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			errs = append(errs, sdk.FieldError{Field: "limit", Reason: "must be an integer from 1 to 500"})
		}
		f.Limit = n
	}
	if len(errs) > 0 {
		return f, &sdk.ValidationError{Fields: errs}
	}
	return f, nil
}

// writeUnavailable answers a store failure: the client may retry.
func writeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Retry-After", "1")
	httpapi.WriteProblem(w, r, http.StatusServiceUnavailable, "storage unavailable: "+err.Error())
}
