package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TaskState is where one pusher's delivery of one request stands.
type TaskState string

// The task states.
const (
	TaskPending   TaskState = "pending"
	TaskDelivered TaskState = "delivered"
	TaskSkipped   TaskState = "skipped"
	TaskDead      TaskState = "dead"
)

// Delivery is one accepted request of data rows for a trigger.
type Delivery struct {
	ID   int64
	UUID string
	// Rows is the JSON array of the accepted rows.
	Rows      []byte
	RowCount  int
	CreatedAt time.Time
	// TraceContext is the W3C trace context of the request that stored
	// the rows, as tracing.Encode writes it; "" for none.
	TraceContext string
}

// Task is one pusher's share of a delivery.
type Task struct {
	ID            int64
	DeliveryID    int64
	Pusher        string
	UUID          string
	State         TaskState
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	FinishedAt    *time.Time
}

// ClaimedTask is a task claimed for pushing, with its delivery's rows
// and trace context (both read by LoadRows).
type ClaimedTask struct {
	Task
	Rows         []byte
	TraceContext string
}

const taskColumns = "t.id, t.delivery_id, t.pusher, t.uuid, t.state, t.attempts, t.next_attempt_at, t.last_error, t.finished_at"

func scanTask(row scanner, extra ...any) (Task, error) {
	var (
		t        Task
		state    string
		next     int64
		lastErr  sql.NullString
		finished sql.NullInt64
	)
	dest := append([]any{&t.ID, &t.DeliveryID, &t.Pusher, &t.UUID, &state, &t.Attempts, &next, &lastErr, &finished}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Task{}, err
	}
	t.State, t.NextAttemptAt, t.LastError = TaskState(state), fromMicros(next), lastErr.String
	if finished.Valid {
		at := fromMicros(finished.Int64)
		t.FinishedAt = &at
	}
	return t, nil
}

// InsertDelivery stores a delivery and one pending task per pusher in one
// transaction.
func (s *Store) InsertDelivery(ctx context.Context, uuid string, rows []byte, rowCount int, pushers []string) (Delivery, error) {
	return s.InsertDeliveryWithKey(ctx, nil, Delivery{UUID: uuid, Rows: rows, RowCount: rowCount}, pushers)
}

// InsertDeliveryWithKey is InsertDelivery of d (its UUID, Rows, RowCount
// and TraceContext; the ID and CreatedAt returned are the stored ones)
// that also stores key (unless nil) in the same transaction, with status
// 202 and the delivery's id as its ref. When key is stored already and
// unexpired nothing is written and the error is a *KeyUsedError; while
// another transaction holds it, ErrKeyInFlight.
func (s *Store) InsertDeliveryWithKey(ctx context.Context, key *IdempotencyKey, d Delivery, pushers []string) (Delivery, error) {
	now := time.Now()
	d.CreatedAt = fromMicros(micros(now))
	uuid, rows, rowCount, tc := d.UUID, d.Rows, d.RowCount, nullString(d.TraceContext)
	if s.dialect == "postgres" && key == nil && len(pushers) > 0 {
		// One statement, one round trip, its own transaction.
		var q strings.Builder
		q.WriteString(`WITH d AS (INSERT INTO deliveries (uuid, rows, row_count, created_at, trace_context) VALUES ($1, $2, $3, $4, $5) RETURNING id),
			t AS (INSERT INTO tasks (delivery_id, pusher, uuid, state, next_attempt_at) SELECT d.id, p.pusher, $1, 'pending', $4 FROM d, (VALUES `)
		args := []any{uuid, rows, rowCount, micros(now), tc}
		for i, p := range pushers {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d)", len(args)+1)
			args = append(args, p)
		}
		q.WriteString(`) p (pusher)) SELECT id FROM d`)
		stats.Add("transactions", 1)
		stats.Add("writes", 1)
		if err := s.w.QueryRowContext(ctx, q.String(), args...).Scan(&d.ID); err != nil {
			return Delivery{}, fmt.Errorf("insert delivery: %w", err)
		}
		return d, nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if key != nil {
			if err := s.claimKey(ctx, tx, key); err != nil {
				return err
			}
		}
		err := s.txQueryRow(ctx, tx, qInsertDelivery,
			uuid, rows, rowCount, micros(now), tc).Scan(&d.ID)
		if err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
		if key != nil {
			if err := s.recordKey(ctx, tx, key, http.StatusAccepted, strconv.FormatInt(d.ID, 10)); err != nil {
				return err
			}
		}
		for _, p := range pushers {
			if _, err := s.txExec(ctx, tx, qInsertTask,
				d.ID, p, uuid, string(TaskPending), micros(now)); err != nil {
				return fmt.Errorf("insert task: %w", err)
			}
		}
		return nil
	})
	return d, err
}

// maxFollowers bounds the tasks one batch takes behind its head.
const maxFollowers = 64

// claimScan bounds the pending tasks one claim reads, oldest first, to
// find the heads of the lines it claims.
const claimScan = 4096

// pendingTask is a pending task as a claim reads it.
type pendingTask struct {
	id, delivery int64
	uuid         string
	next         int64
	until        sql.NullInt64
	rows         int
	bytes        int64
}

// ClaimBatches claims up to limit batches of due tasks of a pusher for
// owner until the lease expires. A batch is the oldest pending task of one
// uuid (so a pusher receives a uuid's rows in the order they were
// accepted) and the tasks queued right behind it for the same uuid while
// the batch holds at most maxRows(uuid) rows (0: the head alone) and at
// most maxBytes bytes of stored rows, so a backlog is pushed in few calls.
// A head is claimed whatever its size. Claimed tasks cannot be claimed by
// anyone else (another instance, with PostgreSQL) until their lease ends;
// tasks behind a head are never claimed on their own, so its claimer owns
// them.
//
// The lines are read outside the write transaction (the oldest claimScan
// pending tasks of the pusher, in one indexed scan), with the tasks
// settled in this process (see SettleTasks) left out. With PostgreSQL a
// transaction then claims the tasks found, those still pending and
// unclaimed, giving up a batch whose head it could not claim; with SQLite
// the claims are kept in memory (see localClaims) and nothing is written.
// The rows are read last.
func (s *Store) ClaimBatches(ctx context.Context, pusher, owner string, limit int, maxRows func(uuid string) int, maxBytes int64, lease time.Duration) ([][]ClaimedTask, error) {
	return s.claimBatches(ctx, pusher, owner, limit, maxRows, maxBytes, lease, true)
}

// ClaimTasks is ClaimBatches without the rows: the tasks' Rows are nil
// until LoadRows reads them, so that batches claimed ahead wait without
// holding their rows in memory.
func (s *Store) ClaimTasks(ctx context.Context, pusher, owner string, limit int, maxRows func(uuid string) int, maxBytes int64, lease time.Duration) ([][]ClaimedTask, error) {
	return s.claimBatches(ctx, pusher, owner, limit, maxRows, maxBytes, lease, false)
}

func (s *Store) claimBatches(ctx context.Context, pusher, owner string, limit int, maxRows func(uuid string) int, maxBytes int64, lease time.Duration, withRows bool) ([][]ClaimedTask, error) {
	now := micros(time.Now())
	plan, err := s.planBatches(ctx, pusher, limit, maxRows, maxBytes, now)
	if err != nil || len(plan) == 0 {
		return nil, err
	}
	var claimed [][]int64
	if s.dialect == "sqlite" {
		claimed = s.claimLocal(owner, lease, now, plan)
	} else {
		err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			claimed, err = s.claimPlanned(ctx, tx, owner, lease, now, plan)
			return err
		})
	}
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	return s.claimedTasks(ctx, claimed, withRows)
}

// claimLocal claims the planned batches' tasks for owner in memory
// (SQLite), as claimPlanned does in the database.
func (s *Store) claimLocal(owner string, lease time.Duration, now int64, plan [][]pendingTask) [][]int64 {
	until := micros(time.Now().Add(lease))
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	s.local.purge(now)
	var claimed [][]int64
	for _, b := range plan {
		var batch []int64
		for _, t := range b {
			if _, taken := s.local.get(t.id, now); taken {
				break
			}
			s.local.m[t.id] = localClaim{owner: owner, until: until}
			batch = append(batch, t.id)
		}
		if len(batch) > 0 && batch[0] == b[0].id {
			claimed = append(claimed, batch)
		}
	}
	return claimed
}

// claimPlanned claims the planned batches' tasks for owner, those still
// pending and unclaimed, in tx; a batch whose head it cannot claim is
// given up, and one ends at the first task it cannot claim (what it claimed
// behind is released). It returns the task ids of each batch claimed.
func (s *Store) claimPlanned(ctx context.Context, tx *sql.Tx, owner string, lease time.Duration, now int64, plan [][]pendingTask) ([][]int64, error) {
	var ids []any
	for _, b := range plan {
		for _, t := range b {
			ids = append(ids, t.id)
		}
	}
	lock := ""
	if s.dialect == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := append([]any{owner, micros(time.Now().Add(lease))}, ids...)
	args = append(args, now)
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE tasks SET claimed_by = ?, claimed_until = ? WHERE id IN (
		SELECT id FROM tasks WHERE id IN (`+placeholders(len(ids))+`) AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?)`+lock+`) RETURNING id`), args...)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	got := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim tasks: %w", err)
		}
		got[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	var (
		claimed  [][]int64
		giveBack []any
	)
	for _, b := range plan {
		var batch []int64
		for i, t := range b {
			switch {
			case got[t.id] && len(batch) == i:
				batch = append(batch, t.id)
			case got[t.id]:
				giveBack = append(giveBack, t.id)
			}
		}
		if len(batch) > 0 {
			claimed = append(claimed, batch)
		}
	}
	if len(giveBack) > 0 {
		args := append([]any{owner}, giveBack...)
		if _, err := tx.ExecContext(ctx, s.q("UPDATE tasks SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND id IN ("+placeholders(len(giveBack))+")"), args...); err != nil {
			return nil, fmt.Errorf("claim tasks: %w", err)
		}
	}
	return claimed, nil
}

// planLine groups tasks, a line's pending tasks in order, into the batch
// a claim would take: the first when due and unclaimed (whatever its
// size), then those right behind it while they are due and unclaimed and
// fit in maxRows rows (0: the head alone) and maxBytes bytes. ok is false
// when the head cannot be claimed now.
func planLine(tasks []pendingTask, maxRows int, maxBytes int64, now int64) (batch []pendingTask, ok bool) {
	claimable := func(t pendingTask) bool { return t.next <= now && (!t.until.Valid || t.until.Int64 < now) }
	if len(tasks) == 0 || !claimable(tasks[0]) {
		return nil, false
	}
	batch = tasks[:1]
	room, roomBytes := maxRows-tasks[0].rows, maxBytes-tasks[0].bytes
	if room <= 0 || roomBytes <= 0 {
		return batch, true
	}
	for _, t := range tasks[1:] {
		if !claimable(t) || t.rows > room || t.bytes > roomBytes || len(batch) > maxFollowers {
			break // the line must stay in order: stop at the first that cannot come
		}
		room, roomBytes = room-t.rows, roomBytes-t.bytes
		batch = append(batch, t)
	}
	return batch, true
}

// planBatches reads the oldest pending tasks of pusher and groups them
// into the batches a claim would take: per uuid, its oldest pending task
// when due and unclaimed, and the due, unclaimed tasks right behind it
// that fit.
func (s *Store) planBatches(ctx context.Context, pusher string, limit int, maxRows func(uuid string) int, maxBytes int64, now int64) ([][]pendingTask, error) {
	rows, err := s.query(ctx, qPlanBatches, pusher, claimScan)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	defer rows.Close()
	var pending []pendingTask
	for rows.Next() {
		var t pendingTask
		if err := rows.Scan(&t.id, &t.delivery, &t.uuid, &t.next, &t.until, &t.rows, &t.bytes); err != nil {
			return nil, fmt.Errorf("claim tasks: %w", err)
		}
		pending = append(pending, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	lines := map[string][]pendingTask{}
	var uuids []string // in the order of their heads
	for _, t := range s.local.overlay(pending, now) {
		if _, seen := lines[t.uuid]; !seen {
			uuids = append(uuids, t.uuid)
		}
		lines[t.uuid] = append(lines[t.uuid], t)
	}
	var plan [][]pendingTask
	for _, u := range uuids {
		if len(plan) == limit {
			break
		}
		if batch, ok := planLine(lines[u], maxRows(u), maxBytes, now); ok {
			plan = append(plan, batch)
		}
	}
	return plan, nil
}

// claimedTasks reads the claimed batches' tasks, with their rows if
// asked, each batch in its line's order.
func (s *Store) claimedTasks(ctx context.Context, claimed [][]int64, withRows bool) ([][]ClaimedTask, error) {
	batchOf := map[int64]int{}
	var ids []any
	for i, b := range claimed {
		for _, id := range b {
			batchOf[id] = i
			ids = append(ids, id)
		}
	}
	query := "SELECT " + taskColumns + " FROM tasks t WHERE t.id IN (" + placeholders(len(ids)) + ") ORDER BY t.delivery_id"
	if withRows {
		query = "SELECT " + taskColumns + ", d.rows FROM tasks t JOIN deliveries d ON d.id = t.delivery_id WHERE t.id IN (" + placeholders(len(ids)) + ") ORDER BY t.delivery_id"
	}
	got, err := s.r.QueryContext(ctx, s.q(query), ids...)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	defer got.Close()
	batches := make([][]ClaimedTask, len(claimed))
	for got.Next() {
		var c ClaimedTask
		var extra []any
		if withRows {
			extra = append(extra, &c.Rows)
		}
		if c.Task, err = scanTask(got, extra...); err != nil {
			return nil, fmt.Errorf("claim tasks: %w", err)
		}
		i := batchOf[c.ID]
		batches[i] = append(batches[i], c)
	}
	return batches, got.Err()
}

// LoadRows reads the rows and trace contexts of tasks (of ClaimTasks):
// the rows into one buffer, each task's Rows a part of it in the tasks'
// order: a task's Rows has the
// capacity of the buffer from its start, so the rows of consecutive tasks
// are one slice, tasks[0].Rows[:n], without a copy.
func (s *Store) LoadRows(ctx context.Context, tasks []ClaimedTask) error {
	if len(tasks) == 0 {
		return nil
	}
	ids := make([]any, len(tasks))
	for i, t := range tasks {
		ids[i] = t.DeliveryID
	}
	rows, err := s.r.QueryContext(ctx, s.q("SELECT id, rows, trace_context FROM deliveries WHERE id IN ("+placeholders(len(ids))+") ORDER BY id"), ids...)
	if err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	defer rows.Close()
	var (
		buf    []byte
		ends   = map[int64][2]int{}
		traces map[int64]string
	)
	for rows.Next() {
		var (
			id  int64
			raw sql.RawBytes
			tc  sql.NullString
		)
		if err := rows.Scan(&id, &raw, &tc); err != nil {
			return fmt.Errorf("read rows: %w", err)
		}
		ends[id] = [2]int{len(buf), len(buf) + len(raw)}
		buf = append(buf, raw...)
		if tc.String != "" {
			if traces == nil {
				traces = map[int64]string{}
			}
			traces[id] = tc.String
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rows: %w", err)
	}
	// A batch's tasks are in delivery order, as the rows were read:
	// otherwise they are laid out again in the tasks' order.
	out, next := buf, 0
	for _, t := range tasks {
		e, ok := ends[t.DeliveryID]
		if !ok {
			return fmt.Errorf("read rows: delivery %d: %w", t.DeliveryID, ErrNotFound)
		}
		if e[0] != next {
			out = nil
		}
		next = e[1]
	}
	if out == nil {
		out = make([]byte, 0, len(buf))
		for _, t := range tasks {
			e := ends[t.DeliveryID]
			out = append(out, buf[e[0]:e[1]]...)
		}
	}
	off := 0
	for i := range tasks {
		n := ends[tasks[i].DeliveryID][1] - ends[tasks[i].DeliveryID][0]
		tasks[i].Rows = out[off : off+n]
		tasks[i].TraceContext = traces[tasks[i].DeliveryID]
		off += n
	}
	return nil
}

// ReleaseClaims frees every task claimed by owner: an instance calls it
// when it starts, since claims its previous run held can no longer be
// worked on. It reports how many it freed.
func (s *Store) ReleaseClaims(ctx context.Context, owner string) (int, error) {
	s.local.mu.Lock()
	released := 0
	for id, c := range s.local.m {
		if c.owner == owner && !c.done {
			delete(s.local.m, id)
			released++
		}
	}
	s.local.mu.Unlock()
	n, err := s.exec(ctx, "UPDATE tasks SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND state = 'pending'", owner)
	n += int64(released)
	if err != nil {
		return 0, fmt.Errorf("release claims: %w", err)
	}
	return int(n), nil
}

// ErrNotClaimed is returned when a task is no longer claimed by the caller
// (its lease ran out and someone else took it).
var ErrNotClaimed = errors.New("task not claimed by this owner")

// FinishTasks records the same final state for several claimed tasks in
// one transaction; it fails, changing nothing, unless owner still holds
// every one of them (ErrNotClaimed). It returns the bytes of stored rows
// this took out of the backlog: those of the tasks' deliveries that have
// no pending task left.
func (s *Store) FinishTasks(ctx context.Context, ids []int64, owner string, state TaskState, lastErr string) (freed int64, err error) {
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		freed, err = s.finishTx(ctx, tx, ids, owner, state, lastErr)
		return err
	})
	s.finished(ids, err == nil)
	if err != nil {
		return 0, err
	}
	return freed, nil
}

func (s *Store) finishTx(ctx context.Context, tx *sql.Tx, ids []int64, owner string, state TaskState, lastErr string) (int64, error) {
	now := micros(time.Now())
	deliveries := make([]int64, 0, len(ids))
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case s.dialect == "sqlite":
		// Claims are in memory (see localClaims).
		if !s.holds(owner, ids) {
			return 0, fmt.Errorf("tasks %v: %w", ids, ErrNotClaimed)
		}
		if len(ids) == 1 {
			rows, err = s.txQuery(ctx, tx, qFinishLocal, string(state), nullString(lastErr), now, ids[0])
			break
		}
		args := []any{string(state), nullString(lastErr), now}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err = tx.QueryContext(ctx, `UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, finished_at = ?,
			claimed_by = NULL, claimed_until = NULL WHERE state = 'pending' AND id IN (`+placeholders(len(ids))+`) RETURNING delivery_id`, args...)
	case len(ids) == 1:
		rows, err = s.txQuery(ctx, tx, qFinishTask, string(state), nullString(lastErr), now, ids[0], owner)
	default:
		args := []any{string(state), nullString(lastErr), now, owner}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err = tx.QueryContext(ctx, s.q(`UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, finished_at = ?,
			claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND state = 'pending' AND id IN (`+placeholders(len(ids))+`) RETURNING delivery_id`), args...)
	}
	if err != nil {
		return 0, fmt.Errorf("update tasks: %w", err)
	}
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return 0, fmt.Errorf("update tasks: %w", err)
		}
		deliveries = append(deliveries, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("update tasks: %w", err)
	}
	if len(deliveries) != len(ids) {
		// Rolled back with this write's savepoint: nothing changes.
		return 0, fmt.Errorf("%d of tasks %v: %w", len(ids)-len(deliveries), ids, ErrNotClaimed)
	}
	return s.settledBytes(ctx, tx, deliveries)
}

// settledBytes sums the stored rows of those deliveries that have no
// pending task left.
func (s *Store) settledBytes(ctx context.Context, tx *sql.Tx, deliveries []int64) (int64, error) {
	var n int64
	var err error
	if len(deliveries) == 1 {
		err = s.txQueryRow(ctx, tx, qSettledBytes, deliveries[0]).Scan(&n)
	} else {
		args := make([]any, len(deliveries))
		for i, d := range deliveries {
			args[i] = d
		}
		err = tx.QueryRowContext(ctx, s.q(`SELECT coalesce(sum(length(d.rows)), 0) FROM deliveries d
			WHERE d.id IN (`+placeholders(len(deliveries))+`) AND `+noPendingTask), args...).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("spool bytes: %w", err)
	}
	return n, nil
}

// noPendingTask holds for a delivery d none of whose tasks is pending.
const noPendingTask = "NOT EXISTS (SELECT 1 FROM tasks p WHERE p.delivery_id = d.id AND p.state = 'pending')"

// DeadLetterPending dead-letters every pending task of pusher, claimed or
// not, with reason as its last error (attempts unchanged). It returns how
// many tasks it dead-lettered and the bytes of stored rows this took out
// of the backlog.
func (s *Store) DeadLetterPending(ctx context.Context, pusher, reason string) (tasks int, freed int64, err error) {
	now := micros(time.Now())
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`SELECT coalesce(sum(length(d.rows)), 0) FROM deliveries d
			WHERE d.id IN (SELECT delivery_id FROM tasks WHERE pusher = ? AND state = 'pending')
			AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.delivery_id = d.id AND p.state = 'pending' AND p.pusher <> ?)`),
			pusher, pusher).Scan(&freed)
		if err != nil {
			return fmt.Errorf("dead-letter pending tasks: %w", err)
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'dead', last_error = ?, finished_at = ?,
			claimed_by = NULL, claimed_until = NULL WHERE pusher = ? AND state = 'pending'`), reason, now, pusher)
		if err != nil {
			return fmt.Errorf("dead-letter pending tasks: %w", err)
		}
		n, err := res.RowsAffected()
		tasks = int(n)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return tasks, freed, nil
}

// ReleaseTasks gives back owner's claims of tasks, uncounted and due now,
// in one transaction; tasks no longer claimed by owner are left alone.
func (s *Store) ReleaseTasks(ctx context.Context, ids []int64, owner string) error {
	now := micros(time.Now())
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, id := range ids {
			var err error
			switch {
			case s.dialect == "sqlite" && !s.holds(owner, []int64{id}):
			case s.dialect == "sqlite":
				_, err = s.txExec(ctx, tx, qRetryLocal, 0, now, nil, id)
			default:
				_, err = s.txExec(ctx, tx, qRetryTask, 0, now, nil, id, owner)
			}
			if err != nil {
				return fmt.Errorf("release task %d: %w", id, err)
			}
		}
		return nil
	})
	if err == nil {
		s.unclaim(owner, ids, 0)
	}
	return err
}

// RetryTask releases a claimed task to be tried again after delay. With
// counted, the failed attempt counts towards the task's attempts.
func (s *Store) RetryTask(ctx context.Context, id int64, owner string, delay time.Duration, lastErr string, counted bool) error {
	inc := 0
	if counted {
		inc = 1
	}
	next := micros(time.Now().Add(delay))
	var (
		n   int64
		err error
	)
	if s.dialect == "sqlite" {
		err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if !s.holds(owner, []int64{id}) {
				return nil
			}
			res, err := s.txExec(ctx, tx, qRetryLocal, inc, next, nullString(lastErr), id)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
	} else {
		n, err = s.exec(ctx, qRetryTask, inc, next, nullString(lastErr), id, owner)
	}
	if err != nil {
		return fmt.Errorf("update task %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("task %d: %w", id, ErrNotClaimed)
	}
	if delay <= 0 {
		next = 0
	}
	s.unclaim(owner, []int64{id}, next)
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetDelivery returns a delivery and its tasks; ErrNotFound when unknown.
func (s *Store) GetDelivery(ctx context.Context, id int64) (Delivery, []Task, error) {
	var (
		d       Delivery
		created int64
	)
	err := s.r.QueryRowContext(ctx, s.q("SELECT id, uuid, rows, row_count, created_at FROM deliveries WHERE id = ?"), id).
		Scan(&d.ID, &d.UUID, &d.Rows, &d.RowCount, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, nil, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, nil, fmt.Errorf("get delivery: %w", err)
	}
	d.CreatedAt = fromMicros(created)
	tasks, err := s.queryTasks(ctx, "SELECT "+taskColumns+" FROM tasks t WHERE t.delivery_id = ? ORDER BY t.pusher", id)
	return d, tasks, err
}

func (s *Store) queryTasks(ctx context.Context, query string, args ...any) ([]Task, error) {
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query tasks: %w", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("query tasks: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeadLetterFilter selects dead letters; empty fields match all.
type DeadLetterFilter struct {
	Pusher, UUID string
	Limit        int
}

// ListDeadLetters returns dead tasks, newest first.
func (s *Store) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]Task, error) {
	query := "SELECT " + taskColumns + " FROM tasks t WHERE t.state = 'dead'"
	var args []any
	if f.Pusher != "" {
		query += " AND t.pusher = ?"
		args = append(args, f.Pusher)
	}
	if f.UUID != "" {
		query += " AND t.uuid = ?"
		args = append(args, f.UUID)
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	query += " ORDER BY t.id DESC LIMIT ?"
	return s.queryTasks(ctx, query, append(args, limit)...)
}

// RetryDeadLetter makes a dead task pending again, due now, with its
// attempts reset; ErrNotFound unless the task is dead. It returns the
// bytes of stored rows this put back into the backlog: its delivery's,
// unless another task of the delivery was pending already.
func (s *Store) RetryDeadLetter(ctx context.Context, id int64) (Task, int64, error) {
	var added int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var (
			size    int64
			pending bool
		)
		err := tx.QueryRowContext(ctx, s.q(`SELECT length(d.rows), EXISTS (SELECT 1 FROM tasks p WHERE p.delivery_id = d.id AND p.state = 'pending')
			FROM tasks t JOIN deliveries d ON d.id = t.delivery_id WHERE t.id = ? AND t.state = 'dead'`), id).Scan(&size, &pending)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("retry dead letter: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE tasks SET state = 'pending', attempts = 0, next_attempt_at = ?, finished_at = NULL,
			claimed_by = NULL, claimed_until = NULL WHERE id = ? AND state = 'dead'`), micros(time.Now()), id); err != nil {
			return fmt.Errorf("retry dead letter: %w", err)
		}
		if !pending {
			added = size
		}
		return nil
	})
	if err != nil {
		return Task{}, 0, err
	}
	tasks, err := s.queryTasks(ctx, "SELECT "+taskColumns+" FROM tasks t WHERE t.id = ?", id)
	if err != nil || len(tasks) == 0 {
		return Task{}, 0, fmt.Errorf("retry dead letter: %w", errors.Join(err, ErrNotFound))
	}
	return tasks[0], added, nil
}

// SpoolUsage is what the spool holds for delivery.
type SpoolUsage struct {
	// Pending counts pending tasks per pusher.
	Pending map[string]int
	// Bytes sums the stored rows of deliveries with a pending task (each
	// delivery once, however many pushers it waits for).
	Bytes int64
}

// Usage reads the spool's usage. Its two figures are read one after the
// other, not as one snapshot.
func (s *Store) Usage(ctx context.Context) (SpoolUsage, error) {
	u := SpoolUsage{Pending: map[string]int{}}
	rows, err := s.r.QueryContext(ctx, "SELECT pusher, count(*) FROM tasks WHERE state = 'pending' GROUP BY pusher")
	if err != nil {
		return SpoolUsage{}, fmt.Errorf("spool usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p string
			n int
		)
		if err := rows.Scan(&p, &n); err != nil {
			return SpoolUsage{}, fmt.Errorf("spool usage: %w", err)
		}
		u.Pending[p] = n
	}
	if err := rows.Err(); err != nil {
		return SpoolUsage{}, fmt.Errorf("spool usage: %w", err)
	}
	err = s.r.QueryRowContext(ctx, `SELECT coalesce(sum(length(d.rows)), 0) FROM deliveries d
		WHERE d.id IN (SELECT delivery_id FROM tasks WHERE state = 'pending')`).Scan(&u.Bytes)
	if err != nil {
		return SpoolUsage{}, fmt.Errorf("spool usage: %w", err)
	}
	return u, nil
}

// OldestDue returns, per pusher with pending tasks, the earliest time one
// of them is or was due (a new task is due when accepted, a retried one
// after its delay): the longest a due task of the pusher has been
// waiting, when it is in the past. It reads the tasks_due index, one
// entry per pusher.
func (s *Store) OldestDue(ctx context.Context, pushers []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(pushers))
	for _, p := range pushers {
		var at sql.NullInt64
		if err := s.r.QueryRowContext(ctx, s.q("SELECT min(next_attempt_at) FROM tasks WHERE pusher = ? AND state = 'pending'"), p).Scan(&at); err != nil {
			return nil, fmt.Errorf("oldest due task: %w", err)
		}
		if at.Valid {
			out[p] = fromMicros(at.Int64)
		}
	}
	return out, nil
}

// Backlog counts pending tasks per pusher.
func (s *Store) Backlog(ctx context.Context) (map[string]int, error) {
	return s.countTasks(ctx, TaskPending)
}

// DeadLetterCounts counts dead-lettered tasks per pusher.
func (s *Store) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	return s.countTasks(ctx, TaskDead)
}

func (s *Store) countTasks(ctx context.Context, state TaskState) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, s.q("SELECT pusher, count(*) FROM tasks WHERE state = ? GROUP BY pusher"), string(state))
	if err != nil {
		return nil, fmt.Errorf("count %s tasks: %w", state, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			p string
			n int
		)
		if err := rows.Scan(&p, &n); err != nil {
			return nil, fmt.Errorf("count %s tasks: %w", state, err)
		}
		out[p] = n
	}
	return out, rows.Err()
}

var (
	qInsertDelivery = hot("INSERT INTO deliveries (uuid, rows, row_count, created_at, trace_context) VALUES (?, ?, ?, ?, ?) RETURNING id")
	qInsertTask     = hot("INSERT INTO tasks (delivery_id, pusher, uuid, state, next_attempt_at) VALUES (?, ?, ?, ?, ?)")
	// A pusher's pending tasks, oldest first (index tasks_pending).
	qPlanBatches = hotRead(`SELECT t.id, t.delivery_id, t.uuid, t.next_attempt_at, t.claimed_until, d.row_count, length(d.rows)
		FROM tasks t JOIN deliveries d ON d.id = t.delivery_id
		WHERE t.pusher = ? AND t.state = 'pending' ORDER BY t.delivery_id LIMIT ?`)
	qFinishTask = hot(`UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, finished_at = ?,
		claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'pending' RETURNING delivery_id`)
	qSettledBytes = hot("SELECT coalesce(sum(length(d.rows)), 0) FROM deliveries d WHERE d.id = ? AND " + noPendingTask)
	// SQLite's claims are in memory (see localClaims): its statements do
	// not check them.
	qFinishLocal = hot(`UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, finished_at = ?,
		claimed_by = NULL, claimed_until = NULL WHERE id = ? AND state = 'pending' RETURNING delivery_id`)
	qRetryLocal = hot("UPDATE tasks SET attempts = attempts + ?, next_attempt_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND state = 'pending'")
	qRetryTask  = hot("UPDATE tasks SET attempts = attempts + ?, next_attempt_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'pending'")
)
