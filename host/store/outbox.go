package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// OutboxEntry is a trigger waiting to be published.
type OutboxEntry struct {
	ID       int64
	Trigger  Trigger
	Attempts int
}

// PendingOutbox returns up to limit entries due for publishing, oldest
// first.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]OutboxEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT t.seq, t.uuid, t.idempotency_key, t.api_version, t.protocol, t.body, t.source, t.status, t.created_at, t.published_at, o.id, o.attempts
		FROM outbox o JOIN triggers t ON t.uuid = o.trigger_uuid
		WHERE o.next_attempt_at <= ? ORDER BY o.id LIMIT ?`), micros(time.Now()), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		if e.Trigger, err = scanTrigger(rows, &e.ID, &e.Attempts); err != nil {
			return nil, fmt.Errorf("pending outbox: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// Settle records the outcome of publishing outbox entries in one
// transaction: each entry is removed and its trigger marked published or
// unroutable at the given time. Entries already gone are ignored.
func (s *Store) Settle(ctx context.Context, published, unroutable []int64, at time.Time) error {
	if len(published)+len(unroutable) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, batch := range []struct {
			ids    []int64
			status Status
		}{{published, StatusPublished}, {unroutable, StatusUnroutable}} {
			for chunk := range slices.Chunk(batch.ids, 500) {
				if err := s.settle(ctx, tx, chunk, batch.status, at); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// settle removes outbox entries ids and marks their triggers status.
func (s *Store) settle(ctx context.Context, tx *sql.Tx, ids []int64, status Status, at time.Time) error {
	in := placeholders(len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, s.q("DELETE FROM outbox WHERE id IN ("+in+") RETURNING trigger_uuid"), args...)
	if err != nil {
		return fmt.Errorf("settle outbox entries: %w", err)
	}
	args = append(make([]any, 0, len(ids)+2), string(status), micros(at))
	for rows.Next() {
		var uuid string
		if err := rows.Scan(&uuid); err != nil {
			rows.Close()
			return fmt.Errorf("settle outbox entries: %w", err)
		}
		args = append(args, uuid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("settle outbox entries: %w", err)
	}
	settled := len(args) - 2
	if settled == 0 {
		return nil // entries already gone
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE triggers SET status = ?, published_at = ? WHERE uuid IN ("+placeholders(settled)+")"), args...); err != nil {
		return fmt.Errorf("settle triggers: %w", err)
	}
	return nil
}

// RetryLater postpones an outbox entry by delay and records why.
func (s *Store) RetryLater(ctx context.Context, id int64, delay time.Duration, lastErr string) error {
	_, err := s.exec(ctx, qRetryOutbox,
		micros(time.Now().Add(delay)), lastErr, id)
	if err != nil {
		return fmt.Errorf("retry outbox entry %d: %w", id, err)
	}
	return nil
}

// Requeue puts a trigger back in the outbox to be published again and
// marks it pending; ErrNotFound when unknown.
func (s *Store) Requeue(ctx context.Context, uuid string) (Trigger, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE triggers SET status = ?, published_at = NULL WHERE uuid = ?"), string(StatusPending), uuid)
		if err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("trigger %s: %w", uuid, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, s.q("INSERT INTO outbox (trigger_uuid, next_attempt_at) VALUES (?, ?) ON CONFLICT (trigger_uuid) DO UPDATE SET next_attempt_at = excluded.next_attempt_at"),
			uuid, micros(time.Now()))
		if err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		return nil
	})
	if err != nil {
		return Trigger{}, err
	}
	return s.GetTrigger(ctx, uuid)
}

// PendingCount is the number of outbox entries.
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}

var (
	qRetryOutbox = hot("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?")
)
