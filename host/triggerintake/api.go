package triggerintake

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/idempotency"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

// API serves the trigger endpoints.
type API struct {
	intake       *Intake
	maxBodyBytes int64
	keys         *idempotency.Keys
}

// NewAPI returns the trigger API over intake. keys holds the
// Idempotency-Keys of POST /triggers; nil ignores the header.
func NewAPI(intake *Intake, maxBodyBytes int64, keys *idempotency.Keys) *API {
	return &API{intake: intake, maxBodyBytes: maxBodyBytes, keys: keys}
}

// Routes mounts:
//
//	POST /triggers                   store and publish a trigger
//	GET  /triggers                   list, newest first, filtered and paginated
//	GET  /triggers/{uuid}            one trigger with its status
//	POST /triggers/{uuid}/republish  publish a stored trigger again
func (a *API) Routes(r *mux.Router) {
	r.HandleFunc("/triggers", httpapi.Handle(a.handlePost)).Methods(http.MethodPost)
	r.HandleFunc("/triggers", httpapi.Handle(a.handleList)).Methods(http.MethodGet)
	r.HandleFunc("/triggers/{uuid}", httpapi.Handle(a.handleGet)).Methods(http.MethodGet)
	r.HandleFunc("/triggers/{uuid}/republish", httpapi.Handle(a.handleRepublish)).Methods(http.MethodPost)
}

// defaultHTTPMetadata marks triggers posted without metadata.
var defaultHTTPMetadata = sdk.Metadata{Source: "control-tower.api", Spec: json.RawMessage(`{"endpoint":"/triggers"}`)}

func (a *API) handlePost(w http.ResponseWriter, r *http.Request) error {
	if _, err := idempotency.Parse(r.Header); err != nil {
		return err
	}
	body, err := httpapi.ReadJSON(r, a.maxBodyBytes)
	if err != nil {
		return err
	}
	var claim *idempotency.Claim
	if a.keys != nil {
		var replay *store.KeyRecord
		if claim, replay, err = a.keys.Begin(r, "/triggers", body); err != nil {
			return err
		}
		if replay != nil {
			return a.replay(w, r, replay)
		}
		defer claim.Done()
	}
	var t sdk.Trigger
	if err := sdk.DecodeStrict(body, &t); err != nil {
		return &httpapi.Error{Status: http.StatusBadRequest, Err: err}
	}
	if t.Metadata == nil {
		md := defaultHTTPMetadata
		t.Metadata = &md
	}
	stored, created, err := a.intake.accept(r.Context(), t, SourceHTTP, "", claim.Key())
	if err != nil {
		// Another instance stored the key meanwhile: its answer is this one's.
		replay, err := claim.Resolve(err)
		if replay != nil {
			return a.replay(w, r, replay)
		}
		return httpapi.Explain(err, ErrConflict, "%v: post the same content to repeat it, or use another uuid", err)
	}
	if !created {
		httpapi.WriteJSON(w, http.StatusOK, stored)
		return nil
	}
	w.Header().Set("Location", "/triggers/"+stored.UUID)
	httpapi.WriteJSON(w, http.StatusCreated, stored)
	return nil
}

// replay answers a request whose Idempotency-Key was stored with the same
// body: the original status (201, or 200 for a trigger that was stored
// already) with the trigger as it is stored now (its status may have
// moved on, to published say).
func (a *API) replay(w http.ResponseWriter, r *http.Request, rec *store.KeyRecord) error {
	t, err := a.intake.Get(r.Context(), rec.Ref)
	if err != nil {
		return err
	}
	idempotency.Replayed(w)
	if rec.Status == http.StatusCreated {
		w.Header().Set("Location", "/triggers/"+t.UUID)
	}
	httpapi.WriteJSON(w, rec.Status, t)
	return nil
}

// notFound names the trigger a not-found error is about.
func notFound(err error, uuid string) error {
	return httpapi.Explain(err, store.ErrNotFound, "no trigger with uuid %s", strconv.Quote(uuid))
}

func (a *API) handleGet(w http.ResponseWriter, r *http.Request) error {
	uuid := mux.Vars(r)["uuid"]
	t, err := a.intake.Get(r.Context(), uuid)
	if err != nil {
		return notFound(err, uuid)
	}
	httpapi.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) handleRepublish(w http.ResponseWriter, r *http.Request) error {
	uuid := mux.Vars(r)["uuid"]
	if _, err := a.intake.store.Requeue(r.Context(), uuid); err != nil {
		return notFound(err, uuid)
	}
	a.intake.stored()
	t, err := a.intake.Get(r.Context(), uuid)
	if err != nil {
		return notFound(err, uuid)
	}
	httpapi.WriteJSON(w, http.StatusAccepted, t)
	return nil
}

type listResponse struct {
	Triggers []sdk.StoredTrigger `json:"triggers"`
	// Next is the cursor of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
}

// badCursor answers a cursor that is not from a previous page.
var badCursor = &sdk.ValidationError{Fields: []sdk.FieldError{{Field: "cursor", Reason: "is not a cursor from a previous page"}}}

func (a *API) handleList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r)
	if err != nil {
		return &httpapi.Error{Status: http.StatusBadRequest, Err: err}
	}
	rows, next, err := a.intake.store.ListTriggers(r.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		return &httpapi.Error{Status: http.StatusBadRequest, Err: badCursor}
	}
	if err != nil {
		return err
	}
	resp := listResponse{Triggers: make([]sdk.StoredTrigger, 0, len(rows)), Next: next}
	for _, row := range rows {
		t, err := decode(row)
		if err != nil {
			return err
		}
		resp.Triggers = append(resp.Triggers, t)
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
	return nil
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
