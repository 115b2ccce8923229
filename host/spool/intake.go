package spool

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/idempotency"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

func isNotFound(err error) bool { return errors.Is(err, sdk.ErrNotFound) }

// dataBody is the body of POST /data and POST /data/batch; each endpoint
// requires one of Row and Rows and refuses the other.
type dataBody struct {
	UUID string    `json:"uuid"`
	Row  *sdk.Row  `json:"row"`
	Rows []sdk.Row `json:"rows"`
}

// Accepted is the answer to an accepted request.
type Accepted struct {
	ID      int64    `json:"id"`
	UUID    string   `json:"uuid"`
	Rows    int      `json:"rows"`
	Pushers []string `json:"pushers"`
}

func (sp *Spool) handleData(batch bool, maxBody int64) httpapi.HandlerFunc {
	scope := "/data"
	if batch {
		scope = "/data/batch"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := idempotency.Parse(r.Header); err != nil {
			return err
		}
		raw, err := httpapi.ReadJSON(r, maxBody)
		if err != nil {
			return err
		}
		var claim *idempotency.Claim
		if sp.cfg.Keys != nil {
			var replay *store.KeyRecord
			if claim, replay, err = sp.cfg.Keys.Begin(r, scope, raw); err != nil {
				return err
			}
			if replay != nil {
				return sp.replay(w, r, replay)
			}
			defer claim.Done()
		}
		var body dataBody
		if err := decodeBody(raw, &body); err != nil {
			return &httpapi.Error{Status: http.StatusBadRequest, Err: err}
		}
		rows, err := sp.validate(r, &body, batch)
		if err != nil {
			return err
		}
		return sp.accept(w, r, claim, body.UUID, rows)
	}
}

// replay answers a request whose Idempotency-Key was stored with the same
// body: the original 202, with the delivery as it was accepted.
func (sp *Spool) replay(w http.ResponseWriter, r *http.Request, rec *store.KeyRecord) error {
	id, err := idempotency.RefID(rec)
	if err != nil {
		return err
	}
	d, tasks, err := sp.store.GetDelivery(r.Context(), id)
	if err != nil {
		return err
	}
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Pusher
	}
	sort.Strings(names)
	idempotency.Replayed(w)
	w.Header().Set("Location", fmt.Sprintf("/data/%d", d.ID))
	httpapi.WriteJSON(w, rec.Status, Accepted{ID: d.ID, UUID: d.UUID, Rows: d.RowCount, Pushers: names})
	return nil
}

// validate checks a decoded body and returns its rows.
func (sp *Spool) validate(r *http.Request, body *dataBody, batch bool) ([]sdk.Row, error) {
	var errs []sdk.FieldError
	fail := func(field, format string, args ...any) {
		errs = append(errs, sdk.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch {
	case body.UUID == "":
		fail("uuid", "is required: the uuid of the trigger these rows belong to")
	case !sdk.ValidUUID(body.UUID):
		fail("uuid", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
	}
	var (
		rows []sdk.Row
		path string
	)
	if batch {
		if body.Row != nil {
			fail("row", "is not accepted by /data/batch: send rows, a list")
		}
		switch {
		case body.Rows == nil:
			fail("rows", "is required: a non-empty list of rows")
		case len(body.Rows) == 0:
			fail("rows", "must not be empty")
		case len(body.Rows) > sp.cfg.MaxRows:
			fail("rows", "has %d rows, at most %d are accepted per request", len(body.Rows), sp.cfg.MaxRows)
		}
		rows, path = body.Rows, "rows"
	} else {
		if body.Rows != nil {
			fail("rows", "is not accepted by /data: send one row, or use /data/batch")
		}
		if body.Row == nil {
			fail("row", "is required: {\"index\": 0, \"data\": {...}}")
		} else {
			rows = []sdk.Row{*body.Row}
		}
		path = "row"
	}
	for i := range rows {
		p := path
		if batch {
			p = fmt.Sprintf("rows[%d]", i)
		}
		var ve *sdk.ValidationError
		if errors.As(rows[i].Validate(), &ve) {
			for _, f := range ve.Fields {
				errs = append(errs, sdk.FieldError{Field: p + "." + f.Field, Reason: f.Reason})
			}
		}
	}
	if len(errs) == 0 && sp.cfg.VerifyTriggers && sp.tower != nil {
		errs = append(errs, sp.verify(r, body.UUID, rows, path, batch)...)
	}
	if len(errs) > 0 {
		return nil, &sdk.ValidationError{Fields: errs}
	}
	return rows, nil
}

// verify checks rows against their trigger: it must exist, and indexes
// must fall inside its plate.
func (sp *Spool) verify(r *http.Request, uuid string, rows []sdk.Row, path string, batch bool) []sdk.FieldError {
	t, err := sp.tower.resolve(r.Context(), uuid)
	if err != nil {
		return []sdk.FieldError{{Field: "uuid", Reason: "cannot be verified now: " + err.Error()}}
	}
	if t == nil {
		return []sdk.FieldError{{Field: "uuid", Reason: "no trigger with this uuid is known to the control-tower"}}
	}
	if t.Plate == nil {
		return nil
	}
	var errs []sdk.FieldError
	for i, row := range rows {
		if row.Index != nil && *row.Index >= t.Plate.Wells() {
			p := path
			if batch {
				p = fmt.Sprintf("rows[%d]", i)
			}
			errs = append(errs, sdk.FieldError{Field: p + ".index", Reason: fmt.Sprintf("%d is outside the trigger's %dx%d plate (0-%d)",
				*row.Index, t.Plate.Rows, t.Plate.Columns, t.Plate.Wells()-1)})
		}
	}
	return errs
}

// accept stores the rows with a task per pusher and answers 202, or says
// why it cannot take them now: 503 without pushers, 413 for a row too
// large for a push or rows larger than the whole spool, 507 when the spool
// is full, 429 when a delivering pusher's backlog is full.
func (sp *Spool) accept(w http.ResponseWriter, r *http.Request, claim *idempotency.Claim, uuid string, rows []sdk.Row) error {
	pushers := sp.pushers()
	if len(pushers) == 0 {
		return &httpapi.Error{Status: http.StatusServiceUnavailable, RetryAfter: 30,
			Err: errors.New("no pusher is installed: accepted data would have nowhere to go")}
	}
	sort.Slice(pushers, func(i, j int) bool { return pushers[i].Name < pushers[j].Name })
	// Rows are kept in the plugin protocol's encoding, so a push sends them
	// as they are.
	encoded, err := pluginhost.EncodeRows(rows)
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "rows cannot be encoded: %w", err)
	}
	if maxRow := sp.batchBytes(); len(encoded) > maxRow {
		if errs := oversizeRows(encoded, maxRow, strings.HasSuffix(r.URL.Path, "/batch")); len(errs) > 0 {
			return &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Err: &sdk.ValidationError{Fields: errs}}
		}
	}
	if size := int64(len(encoded)); size > sp.cfg.MaxSpoolBytes {
		return httpapi.Errorf(http.StatusRequestEntityTooLarge,
			"the rows take %d bytes as stored, more than the whole spool may hold (MAX_SPOOL_BYTES=%d): send them in smaller requests", size, sp.cfg.MaxSpoolBytes)
	}
	res, ref := sp.ledger.admit(pushers, int64(len(encoded)))
	// Delivery behind, and nothing else in the way: the request waits a
	// little for it to catch up, so that intake follows delivery's pace
	// rather than refusing whole seconds' worth (Retry-After).
	for waited := time.Duration(0); ref != nil && ref.onlyBehind() && waited < admissionWait; waited += agePoll {
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(agePoll):
		}
		res, ref = sp.ledger.admit(pushers, int64(len(encoded)))
	}
	if ref != nil {
		return sp.refusal(ref, pushers, int64(len(encoded)))
	}
	names := make([]string, len(pushers))
	for i, p := range pushers {
		names[i] = p.Name
	}
	// The request's trace context is kept with the rows: their delivery
	// and pushes continue the caller's trace.
	ctx, span := tracing.StartStore(r.Context(), sp.cfg.Tracer, "INSERT", "deliveries", sp.store.Dialect())
	d, err := sp.store.InsertDeliveryWithKey(ctx, claim.Key(),
		store.Delivery{UUID: uuid, Rows: encoded, RowCount: len(rows), TraceContext: tracing.Encode(r.Context())}, names)
	tracing.End(span, err)
	if err != nil {
		sp.ledger.cancel(res)
		// Another instance stored the key meanwhile: its answer is this one's.
		replay, err := claim.Resolve(err)
		if replay != nil {
			return sp.replay(w, r, replay)
		}
		return err
	}
	sp.ledger.commit(res)
	sp.cfg.Metrics.DeliveriesReceived.Inc()
	sp.cfg.Metrics.RowsReceived.Add(float64(len(rows)))
	for _, p := range names {
		sp.kick(p)
	}
	w.Header().Set("Location", fmt.Sprintf("/data/%d", d.ID))
	httpapi.WriteJSON(w, http.StatusAccepted, Accepted{ID: d.ID, UUID: uuid, Rows: len(rows), Pushers: names})
	return nil
}

// admissionWait bounds how long a request waits for delivery to catch up
// (MaxBacklogAge) before it is refused with 429.
const admissionWait = time.Second

// oversizeRows names the rows whose encoding alone is over max bytes: no
// push could carry them.
func oversizeRows(encoded pluginhost.EncodedRows, max int, batch bool) []sdk.FieldError {
	var errs []sdk.FieldError
	for i, size := range rowSizes(encoded) {
		if size > max {
			field := "row"
			if batch {
				field = fmt.Sprintf("rows[%d]", i)
			}
			errs = append(errs, sdk.FieldError{Field: field, Reason: fmt.Sprintf(
				"is %d bytes in the plugin protocol; a push to a pusher carries at most %d bytes of rows", size, max)})
		}
	}
	return errs
}

// refusal is the answer to a request the spool cannot take now: 507 when
// it is full, else 429 naming the pushers whose backlog is full (Retry-After
// 5 s) or, failing that, those whose oldest due task waited longer than
// MaxBacklogAge for the whole admissionWait (Retry-After 1 s).
func (sp *Spool) refusal(ref *refusal, pushers []Pusher, size int64) error {
	if ref.spoolFull {
		var paused, behind []string
		for _, p := range pushers {
			if n := ref.pending[p.Name]; n > 0 {
				if p.Paused {
					paused = append(paused, fmt.Sprintf("%s (%s, %d pending)", p.Name, p.State, n))
				} else {
					behind = append(behind, fmt.Sprintf("%s (%d pending)", p.Name, n))
				}
			}
		}
		detail := fmt.Sprintf("spool full: %d bytes of rows wait for delivery and this request needs %d more, over MAX_SPOOL_BYTES=%d. ",
			ref.spoolBytes, size, sp.cfg.MaxSpoolBytes)
		if len(paused) > 0 {
			detail += "Rows are kept for paused pushers until they run again: " + strings.Join(paused, ", ") +
				". Start or restart them (POST /plugins/{name}/start, or routectl start <name>) so they catch up and free the space, then retry."
		} else {
			detail += "Retry later, once the pushers have delivered their backlog"
			if len(behind) > 0 {
				detail += " (" + strings.Join(behind, ", ") + ")"
			}
			detail += "."
		}
		return &httpapi.Error{Status: http.StatusInsufficientStorage, RetryAfter: 30, Err: errors.New(detail)}
	}
	if len(ref.full) == 0 {
		var behind []string
		for p, age := range ref.behind {
			behind = append(behind, fmt.Sprintf("%s (oldest due task waiting %.1f s)", p, age.Seconds()))
		}
		sort.Strings(behind)
		return &httpapi.Error{Status: http.StatusTooManyRequests, RetryAfter: 1, Err: fmt.Errorf(
			"delivery is behind: MAX_BACKLOG_AGE=%s passed for %s; retry later", sp.cfg.MaxBacklogAge, strings.Join(behind, ", "))}
	}
	full := make([]string, len(ref.full))
	for i, p := range ref.full {
		full[i] = fmt.Sprintf("%s (%d pending)", p, ref.pending[p])
	}
	return &httpapi.Error{Status: http.StatusTooManyRequests, RetryAfter: 5, Err: fmt.Errorf(
		"backlog limit MAX_BACKLOG=%d reached for %s; retry later", sp.cfg.MaxBacklog, strings.Join(full, ", "))}
}
