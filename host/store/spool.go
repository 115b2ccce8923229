package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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

// ClaimedTask is a task claimed for pushing, with its delivery's rows.
type ClaimedTask struct {
	Task
	Rows []byte
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
	return s.InsertDeliveryWithKey(ctx, nil, uuid, rows, rowCount, pushers)
}

// InsertDeliveryWithKey is InsertDelivery that also stores key (unless
// nil) in the same transaction, with status 202 and the delivery's id as
// its ref. When key is stored already and unexpired nothing is written and
// the error is a *KeyUsedError; while another transaction holds it,
// ErrKeyInFlight.
func (s *Store) InsertDeliveryWithKey(ctx context.Context, key *IdempotencyKey, uuid string, rows []byte, rowCount int, pushers []string) (Delivery, error) {
	now := time.Now()
	d := Delivery{UUID: uuid, Rows: rows, RowCount: rowCount, CreatedAt: fromMicros(micros(now))}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if key != nil {
			if err := s.claimKey(ctx, tx, key); err != nil {
				return err
			}
		}
		err := s.txQueryRow(ctx, tx, qInsertDelivery,
			uuid, rows, rowCount, micros(now)).Scan(&d.ID)
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
func (s *Store) ClaimBatches(ctx context.Context, pusher, owner string, limit int, maxRows func(uuid string) int, maxBytes int64, lease time.Duration) ([][]ClaimedTask, error) {
	now := micros(time.Now())
	lock := ""
	if s.dialect == "postgres" {
		lock = " FOR UPDATE OF t SKIP LOCKED"
	}
	var batches [][]ClaimedTask
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		batches = nil
		type head struct {
			id, delivery int64
			uuid         string
			rows         int
			bytes        int64
		}
		var heads []head
		rows, err := s.txQuery(ctx, tx, qClaimHeads+lock, pusher, pusher, now, now, limit)
		if err != nil {
			return fmt.Errorf("claim tasks: %w", err)
		}
		for rows.Next() {
			var h head
			if err := rows.Scan(&h.id, &h.delivery, &h.uuid, &h.rows, &h.bytes); err != nil {
				rows.Close()
				return fmt.Errorf("claim tasks: %w", err)
			}
			heads = append(heads, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(heads) == 0 {
			return err
		}
		batchOf := map[int64]int{} // task id -> batch index
		var ids []any
		for i, h := range heads {
			batchOf[h.id] = i
			ids = append(ids, h.id)
			room, roomBytes := maxRows(h.uuid)-h.rows, maxBytes-h.bytes
			if room <= 0 || roomBytes <= 0 {
				continue
			}
			followers, err := s.followers(ctx, tx, pusher, h.uuid, h.delivery, room, roomBytes, now)
			if err != nil {
				return err
			}
			for _, id := range followers {
				batchOf[id] = i
				ids = append(ids, id)
			}
		}
		in := placeholders(len(ids))
		args := append([]any{owner, micros(time.Now().Add(lease))}, ids...)
		if _, err := tx.ExecContext(ctx, s.q("UPDATE tasks SET claimed_by = ?, claimed_until = ? WHERE id IN ("+in+")"), args...); err != nil {
			return fmt.Errorf("claim tasks: %w", err)
		}
		got, err := tx.QueryContext(ctx, s.q("SELECT "+taskColumns+", d.rows FROM tasks t JOIN deliveries d ON d.id = t.delivery_id WHERE t.id IN ("+in+") ORDER BY t.delivery_id"), ids...)
		if err != nil {
			return fmt.Errorf("claim tasks: %w", err)
		}
		defer got.Close()
		batches = make([][]ClaimedTask, len(heads))
		for got.Next() {
			var c ClaimedTask
			if c.Task, err = scanTask(got, &c.Rows); err != nil {
				return fmt.Errorf("claim tasks: %w", err)
			}
			i := batchOf[c.ID]
			batches[i] = append(batches[i], c)
		}
		return got.Err()
	})
	return batches, err
}

// followers lists the tasks queued right behind a uuid's head (delivery
// id after), in order, while they are due and unclaimed and their rows fit
// in room rows and roomBytes bytes.
func (s *Store) followers(ctx context.Context, tx *sql.Tx, pusher, uuid string, after int64, room int, roomBytes int64, now int64) ([]int64, error) {
	rows, err := s.txQuery(ctx, tx, qFollowers, pusher, uuid, after, maxFollowers)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var (
			id, next, size int64
			until          sql.NullInt64
			n              int
		)
		if err := rows.Scan(&id, &next, &until, &n, &size); err != nil {
			return nil, fmt.Errorf("claim tasks: %w", err)
		}
		if next > now || (until.Valid && until.Int64 >= now) || n > room || size > roomBytes {
			break // the line must stay in order: stop at the first that cannot come
		}
		room, roomBytes = room-n, roomBytes-size
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ReleaseClaims frees every task claimed by owner: an instance calls it
// when it starts, since claims its previous run held can no longer be
// worked on. It reports how many it freed.
func (s *Store) ReleaseClaims(ctx context.Context, owner string) (int, error) {
	n, err := s.exec(ctx, "UPDATE tasks SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND state = 'pending'", owner)
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
// every one of them. It returns the bytes of stored rows this took out of
// the backlog: those of the tasks' deliveries that have no pending task
// left.
func (s *Store) FinishTasks(ctx context.Context, ids []int64, owner string, state TaskState, lastErr string) (freed int64, err error) {
	now := micros(time.Now())
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		deliveries := make([]int64, 0, len(ids))
		for _, id := range ids {
			var d int64
			err := s.txQueryRow(ctx, tx, qFinishTask,
				string(state), nullString(lastErr), now, id, owner).Scan(&d)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("task %d: %w", id, ErrNotClaimed)
			}
			if err != nil {
				return fmt.Errorf("update task %d: %w", id, err)
			}
			deliveries = append(deliveries, d)
		}
		var err error
		freed, err = s.settledBytes(ctx, tx, deliveries)
		return err
	})
	if err != nil {
		return 0, err
	}
	return freed, nil
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
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := s.txExec(ctx, tx, qRetryTask, 0, now, nil, id, owner); err != nil {
				return fmt.Errorf("release task %d: %w", id, err)
			}
		}
		return nil
	})
}

// RetryTask releases a claimed task to be tried again after delay. With
// counted, the failed attempt counts towards the task's attempts.
func (s *Store) RetryTask(ctx context.Context, id int64, owner string, delay time.Duration, lastErr string, counted bool) error {
	inc := 0
	if counted {
		inc = 1
	}
	n, err := s.exec(ctx, qRetryTask, inc, micros(time.Now().Add(delay)), nullString(lastErr), id, owner)
	if err != nil {
		return fmt.Errorf("update task %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("task %d: %w", id, ErrNotClaimed)
	}
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
	qInsertDelivery = hot("INSERT INTO deliveries (uuid, rows, row_count, created_at) VALUES (?, ?, ?, ?) RETURNING id")
	qInsertTask     = hot("INSERT INTO tasks (delivery_id, pusher, uuid, state, next_attempt_at) VALUES (?, ?, ?, ?, ?)")
	// The head of each uuid's line is its oldest pending task (found in
	// the tasks_line index alone); it is claimable when due and unclaimed.
	qClaimHeads = hot(`SELECT t.id, t.delivery_id, t.uuid, d.row_count, length(d.rows)
		FROM (SELECT uuid, MIN(delivery_id) AS head FROM tasks WHERE pusher = ? AND state = 'pending' GROUP BY uuid) h
		JOIN tasks t ON t.pusher = ? AND t.uuid = h.uuid AND t.delivery_id = h.head AND t.state = 'pending'
		JOIN deliveries d ON d.id = t.delivery_id
		WHERE t.next_attempt_at <= ? AND (t.claimed_until IS NULL OR t.claimed_until < ?)
		ORDER BY t.delivery_id LIMIT ?`)
	qFollowers = hot(`SELECT t.id, t.next_attempt_at, t.claimed_until, d.row_count, length(d.rows) FROM tasks t JOIN deliveries d ON d.id = t.delivery_id
		WHERE t.pusher = ? AND t.uuid = ? AND t.state = 'pending' AND t.delivery_id > ?
		ORDER BY t.delivery_id LIMIT ?`)
	qFinishTask = hot(`UPDATE tasks SET state = ?, attempts = attempts + 1, last_error = ?, finished_at = ?,
		claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'pending' RETURNING delivery_id`)
	qSettledBytes = hot("SELECT coalesce(sum(length(d.rows)), 0) FROM deliveries d WHERE d.id = ? AND " + noPendingTask)
	qRetryTask    = hot("UPDATE tasks SET attempts = attempts + ?, next_attempt_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ? AND state = 'pending'")
)
