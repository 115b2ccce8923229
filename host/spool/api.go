package spool

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/store"
)

// Routes mounts the data API:
//
//	POST /data                        one row for a trigger
//	POST /data/batch                  several rows for a trigger
//	GET  /data/{id}                   one delivery's status per pusher
//	GET  /deadletters                 dead-lettered tasks (?pusher=, ?uuid=)
//	POST /deadletters/{id}/retry      deliver a dead letter again
func (sp *Spool) Routes(r *mux.Router, maxBodyBytes int64) {
	r.HandleFunc("/data", httpapi.Handle(sp.handleData(false, maxBodyBytes))).Methods(http.MethodPost)
	r.HandleFunc("/data/batch", httpapi.Handle(sp.handleData(true, maxBodyBytes))).Methods(http.MethodPost)
	r.HandleFunc("/data/{id:[0-9]+}", httpapi.Handle(sp.handleDelivery)).Methods(http.MethodGet)
	r.HandleFunc("/deadletters", httpapi.Handle(sp.handleDeadLetters)).Methods(http.MethodGet)
	r.HandleFunc("/deadletters/{id:[0-9]+}/retry", httpapi.Handle(sp.handleRetry)).Methods(http.MethodPost)
}

// TaskStatus is one pusher's progress on a delivery, or a dead letter.
// LastError is the last failure, or a skip's reason; Note is the pusher's
// note on a delivered task (e.g. keys it ignored).
type TaskStatus struct {
	ID            int64      `json:"id"`
	DeliveryID    int64      `json:"deliveryId"`
	Pusher        string     `json:"pusher"`
	UUID          string     `json:"uuid"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"lastError,omitempty"`
	Note          string     `json:"note,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
}

func taskStatus(t store.Task) TaskStatus {
	s := TaskStatus{
		ID: t.ID, DeliveryID: t.DeliveryID, Pusher: t.Pusher, UUID: t.UUID, State: string(t.State),
		Attempts: t.Attempts, LastError: t.LastError, FinishedAt: t.FinishedAt,
	}
	if t.State == store.TaskDelivered {
		// A delivered task's message is the pusher's note, not an error.
		s.Note, s.LastError = t.LastError, ""
	}
	if t.State == store.TaskPending {
		next := t.NextAttemptAt
		s.NextAttemptAt = &next
	}
	return s
}

// DeliveryStatus is the answer of GET /data/{id}.
type DeliveryStatus struct {
	ID        int64        `json:"id"`
	UUID      string       `json:"uuid"`
	Rows      int          `json:"rows"`
	CreatedAt time.Time    `json:"createdAt"`
	Pushers   []TaskStatus `json:"pushers"`
}

func pathID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	return id
}

func (sp *Spool) handleDelivery(w http.ResponseWriter, r *http.Request) error {
	d, tasks, err := sp.store.GetDelivery(r.Context(), pathID(r))
	if err != nil {
		return err
	}
	out := DeliveryStatus{ID: d.ID, UUID: d.UUID, Rows: d.RowCount, CreatedAt: d.CreatedAt, Pushers: []TaskStatus{}}
	for _, t := range tasks {
		out.Pushers = append(out.Pushers, taskStatus(t))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (sp *Spool) handleDeadLetters(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tasks, err := sp.store.ListDeadLetters(r.Context(), store.DeadLetterFilter{Pusher: q.Get("pusher"), UUID: q.Get("uuid")})
	if err != nil {
		return err
	}
	out := struct {
		DeadLetters []TaskStatus `json:"deadletters"`
	}{DeadLetters: []TaskStatus{}}
	for _, t := range tasks {
		out.DeadLetters = append(out.DeadLetters, taskStatus(t))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (sp *Spool) handleRetry(w http.ResponseWriter, r *http.Request) error {
	t, added, err := sp.store.RetryDeadLetter(r.Context(), pathID(r))
	if err != nil {
		return httpapi.Explain(err, store.ErrNotFound, "no dead letter with this id")
	}
	sp.ledger.reopened(t.Pusher, 1, added)
	sp.kick(t.Pusher)
	httpapi.WriteJSON(w, http.StatusAccepted, taskStatus(t))
	return nil
}
