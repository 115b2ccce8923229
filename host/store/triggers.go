package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Status is a trigger's publish status.
type Status string

// The trigger statuses.
const (
	StatusPending    Status = "pending"
	StatusPublished  Status = "published"
	StatusUnroutable Status = "unroutable"
)

// Trigger is a stored protocol trigger.
type Trigger struct {
	UUID string
	// IdempotencyKey is unique when set; "" means none.
	IdempotencyKey string
	APIVersion     string
	Protocol       string
	// Body is the trigger's JSON as accepted, stored and returned verbatim.
	Body        []byte
	Source      string
	Status      Status
	CreatedAt   time.Time
	PublishedAt *time.Time
	// Seq is the insertion order.
	Seq int64
	// TraceContext is the W3C trace context of the request or emission
	// that stored the trigger, as tracing.Encode writes it; "" for none.
	TraceContext string
}

const triggerColumns = "seq, uuid, idempotency_key, api_version, protocol, body, source, status, created_at, published_at, trace_context"

type scanner interface{ Scan(dest ...any) error }

func scanTrigger(row scanner, extra ...any) (Trigger, error) {
	var (
		t         Trigger
		key       sql.NullString
		status    string
		created   int64
		published sql.NullInt64
		tc        sql.NullString
	)
	dest := append([]any{&t.Seq, &t.UUID, &key, &t.APIVersion, &t.Protocol, &t.Body, &t.Source, &status, &created, &published, &tc}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Trigger{}, err
	}
	t.IdempotencyKey, t.Status, t.CreatedAt, t.TraceContext = key.String, Status(status), fromMicros(created), tc.String
	if published.Valid {
		at := fromMicros(published.Int64)
		t.PublishedAt = &at
	}
	return t, nil
}

// InsertTrigger stores t (status pending) and its outbox entry in one
// transaction. A trigger already stored under t's idempotency key, or
// under its uuid with the same body, is returned with created false; a
// different body under an existing uuid is ErrConflict.
func (s *Store) InsertTrigger(ctx context.Context, t Trigger) (Trigger, bool, error) {
	return s.InsertTriggerWithKey(ctx, nil, t)
}

// InsertTriggerWithKey is InsertTrigger that also stores key (unless nil)
// in the same transaction, with the trigger's uuid as its ref and status
// 201 when the trigger is new, 200 when it was stored already. When key
// is stored already and unexpired nothing is written and the error is a
// *KeyUsedError; while another transaction holds it, ErrKeyInFlight.
func (s *Store) InsertTriggerWithKey(ctx context.Context, key *IdempotencyKey, t Trigger) (Trigger, bool, error) {
	for attempt := 0; ; attempt++ {
		stored, created, err := s.insertTrigger(ctx, key, t)
		// A concurrent insert of the same uuid or key won the race: read
		// what it stored.
		if isUniqueViolation(err) && attempt < 3 {
			continue
		}
		return stored, created, err
	}
}

func (s *Store) insertTrigger(ctx context.Context, key *IdempotencyKey, t Trigger) (stored Trigger, created bool, err error) {
	if s.dialect == "postgres" && key == nil {
		// The common case in one statement, one round trip: a new trigger
		// and its outbox entry. An existing uuid or key inserts nothing and
		// goes the transaction's way below, which reads what is stored.
		if stored, err = s.insertNewTrigger(ctx, t); err == nil {
			return stored, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Trigger{}, false, err
		}
	}
	if s.group != nil && key == nil {
		return s.insertTriggerGrouped(ctx, t)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if key != nil {
			if err := s.claimKey(ctx, tx, key); err != nil {
				return err
			}
		}
		var err error
		if stored, created, err = s.insertTriggerTx(ctx, tx, t); err != nil || key == nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return s.recordKey(ctx, tx, key, status, stored.UUID)
	})
	return stored, created, err
}

// insertTriggerGrouped is insertTrigger on SQLite without an idempotency
// key to record: the committer inserts t with the other new triggers of
// its transaction (see groupOp.trigger), or, when it could not, the write
// stores it alone.
func (s *Store) insertTriggerGrouped(ctx context.Context, t Trigger) (stored Trigger, created bool, err error) {
	n := t
	n.Status, n.CreatedAt, n.PublishedAt = StatusPending, fromMicros(micros(time.Now())), nil
	nt := &newTrigger{t: n}
	if n.IdempotencyKey != "" {
		nt.key = n.IdempotencyKey
	}
	err = s.group.doTrigger(ctx, nt, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		stored, created, err = s.insertTriggerTx(ctx, tx, t)
		return err
	})
	if err == nil && nt.inserted {
		return nt.t, true, nil
	}
	return stored, created, err
}

// insertTriggersTogether inserts ts in tx, in one statement, and their
// outbox entries in another, and marks those it inserted: not those whose
// uuid or key is stored already, nor, of several with one uuid or key in
// ts, any but the first.
func (s *Store) insertTriggersTogether(tx *sql.Tx, ts []*newTrigger) error {
	var b strings.Builder
	b.WriteString("INSERT INTO triggers (uuid, idempotency_key, api_version, protocol, body, source, status, created_at, trace_context) VALUES ")
	args := make([]any, 0, 9*len(ts))
	for i, nt := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		t := nt.t
		args = append(args, t.UUID, nt.key, t.APIVersion, t.Protocol, t.Body, t.Source, string(t.Status), micros(t.CreatedAt), nullString(t.TraceContext))
	}
	b.WriteString(" ON CONFLICT DO NOTHING RETURNING seq, uuid")
	rows, err := tx.Query(b.String(), args...)
	if err != nil {
		return fmt.Errorf("insert triggers: %w", err)
	}
	seqs := make(map[string]int64, len(ts))
	for rows.Next() {
		var (
			seq  int64
			uuid string
		)
		if err := rows.Scan(&seq, &uuid); err != nil {
			rows.Close()
			return fmt.Errorf("insert triggers: %w", err)
		}
		seqs[uuid] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert triggers: %w", err)
	}
	if len(seqs) == 0 {
		return nil
	}
	b.Reset()
	b.WriteString("INSERT INTO outbox (trigger_uuid, next_attempt_at) VALUES ")
	args = args[:0]
	for _, nt := range ts {
		seq, ok := seqs[nt.t.UUID]
		if !ok {
			continue
		}
		// The first with this uuid was inserted; the others find it.
		delete(seqs, nt.t.UUID)
		nt.t.Seq, nt.inserted = seq, true
		if len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		args = append(args, nt.t.UUID, micros(nt.t.CreatedAt))
	}
	if _, err := tx.Exec(b.String(), args...); err != nil {
		return fmt.Errorf("insert outbox entries: %w", err)
	}
	return nil
}

// insertNewTrigger stores t (status pending) and its outbox entry in one
// PostgreSQL statement, its own transaction; sql.ErrNoRows when t's uuid
// or idempotency key is stored already (nothing is written then).
func (s *Store) insertNewTrigger(ctx context.Context, t Trigger) (Trigger, error) {
	now := time.Now()
	n := t
	n.Status, n.CreatedAt, n.PublishedAt = StatusPending, fromMicros(micros(now)), nil
	var key any
	if n.IdempotencyKey != "" {
		key = n.IdempotencyKey
	}
	stats.Add("transactions", 1)
	stats.Add("writes", 1)
	err := s.w.QueryRowContext(ctx, qInsertTriggerAndOutbox,
		n.UUID, key, n.APIVersion, n.Protocol, n.Body, n.Source, string(n.Status), micros(now), nullString(n.TraceContext)).Scan(&n.Seq)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Trigger{}, err
		}
		return Trigger{}, fmt.Errorf("insert trigger: %w", err)
	}
	return n, nil
}

// insertTriggerTx is insertTrigger's work in tx: the stored trigger and
// whether it is new.
func (s *Store) insertTriggerTx(ctx context.Context, tx *sql.Tx, t Trigger) (Trigger, bool, error) {
	// The common case first: a new trigger is inserted at once; only when
	// its uuid or key exists already is the existing one read.
	now := time.Now()
	n := t
	n.Status, n.CreatedAt, n.PublishedAt = StatusPending, fromMicros(micros(now)), nil
	var key any
	if n.IdempotencyKey != "" {
		key = n.IdempotencyKey
	}
	var err error
	if s.dialect == "sqlite" {
		n.Seq, err = s.insertTriggerSQLite(ctx, tx, n, key, micros(now))
	} else {
		err = s.txQueryRow(ctx, tx, qInsertTrigger,
			n.UUID, key, n.APIVersion, n.Protocol, n.Body, n.Source, string(n.Status), micros(now), nullString(n.TraceContext)).Scan(&n.Seq)
	}
	switch {
	case err == nil:
		if _, err := s.txExec(ctx, tx, qInsertOutbox, n.UUID, micros(now)); err != nil {
			return Trigger{}, false, fmt.Errorf("insert outbox entry: %w", err)
		}
		return n, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Trigger{}, false, fmt.Errorf("insert trigger: %w", err)
	}
	if t.IdempotencyKey != "" {
		existing, err := scanTrigger(s.txQueryRow(ctx, tx, qTriggerByKey, t.IdempotencyKey))
		if err == nil {
			return existing, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Trigger{}, false, fmt.Errorf("look up idempotency key: %w", err)
		}
	}
	existing, err := scanTrigger(s.txQueryRow(ctx, tx, qTriggerByUUID, t.UUID))
	if err != nil {
		return Trigger{}, false, fmt.Errorf("look up uuid: %w", err)
	}
	if !bytes.Equal(existing.Body, t.Body) {
		return Trigger{}, false, fmt.Errorf("%w: trigger %s exists with a different body", ErrConflict, t.UUID)
	}
	return existing, false, nil
}

// insertTriggerSQLite inserts n in tx and returns its seq, or
// sql.ErrNoRows when its uuid or key is stored already (nothing is
// written then). It reads the seq from the statement's result rather than
// a RETURNING clause, whose rows SQLite gathers in a temporary table.
func (s *Store) insertTriggerSQLite(ctx context.Context, tx *sql.Tx, n Trigger, key any, now int64) (int64, error) {
	res, err := s.txExec(ctx, tx, qInsertTriggerSQLite, n.UUID, key, n.APIVersion, n.Protocol, n.Body, n.Source, string(n.Status), now, nullString(n.TraceContext))
	if err != nil {
		return 0, err
	}
	if inserted, err := res.RowsAffected(); err != nil || inserted == 0 {
		return 0, cmp.Or(err, sql.ErrNoRows)
	}
	return res.LastInsertId()
}

// GetTrigger returns the trigger with uuid, or ErrNotFound.
func (s *Store) GetTrigger(ctx context.Context, uuid string) (Trigger, error) {
	t, err := scanTrigger(s.r.QueryRowContext(ctx, s.q("SELECT "+triggerColumns+" FROM triggers WHERE uuid = ?"), uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return Trigger{}, fmt.Errorf("trigger %s: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return Trigger{}, fmt.Errorf("get trigger: %w", err)
	}
	return t, nil
}

// TriggerFilter selects triggers; empty fields match everything.
type TriggerFilter struct {
	APIVersion, Protocol, Source string
	Status                       Status
	// Since and Until bound the creation time (inclusive, exclusive).
	Since, Until time.Time
	// Limit is the page size: default 50, at most 500.
	Limit int
	// Cursor continues a previous listing.
	Cursor string
}

// ErrBadCursor is returned for a cursor no listing produced.
var ErrBadCursor = errors.New("invalid cursor")

// ListTriggers returns matching triggers, newest first, and the cursor of
// the next page ("" on the last one).
func (s *Store) ListTriggers(ctx context.Context, f TriggerFilter) ([]Trigger, string, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	for _, eq := range []struct{ col, val string }{
		{"api_version", f.APIVersion}, {"protocol", f.Protocol}, {"source", f.Source}, {"status", string(f.Status)},
	} {
		if eq.val != "" {
			add(eq.col+" = ?", eq.val)
		}
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", micros(f.Until))
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(strings.TrimPrefix(f.Cursor, "s"), 10, 64)
		if err != nil || !strings.HasPrefix(f.Cursor, "s") {
			return nil, "", ErrBadCursor
		}
		add("seq < ?", seq)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	query := "SELECT " + triggerColumns + " FROM triggers"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq DESC LIMIT ?"
	args = append(args, limit+1)

	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list triggers: %w", err)
	}
	defer rows.Close()
	var out []Trigger
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list triggers: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list triggers: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = "s" + strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}

var (
	qTriggerByKey  = hot("SELECT " + triggerColumns + " FROM triggers WHERE idempotency_key = ?")
	qTriggerByUUID = hot("SELECT " + triggerColumns + " FROM triggers WHERE uuid = ?")
	qInsertTrigger = hot(`INSERT INTO triggers (uuid, idempotency_key, api_version, protocol, body, source, status, created_at, trace_context)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq`)
	qInsertTriggerSQLite = hot(`INSERT INTO triggers (uuid, idempotency_key, api_version, protocol, body, source, status, created_at, trace_context)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	// PostgreSQL's insert of a new trigger and its outbox entry in one
	// statement (the foreign key is checked at its end).
	qInsertTriggerAndOutbox = `WITH t AS (INSERT INTO triggers (uuid, idempotency_key, api_version, protocol, body, source, status, created_at, trace_context)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING seq, uuid),
		o AS (INSERT INTO outbox (trigger_uuid, next_attempt_at) SELECT uuid, $8 FROM t)
		SELECT seq FROM t`
	qInsertOutbox = hot("INSERT INTO outbox (trigger_uuid, next_attempt_at) VALUES (?, ?)")
)
