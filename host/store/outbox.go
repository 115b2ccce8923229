package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OutboxEntry is a trigger waiting to be published, claimed by the caller
// of ClaimOutbox.
type OutboxEntry struct {
	ID       int64
	Trigger  Trigger
	Attempts int
	// ReclaimedFrom is the owner whose claim of the entry expired before
	// this claim took it over, "" when the entry was free. That owner may
	// have published it already (it died, or could not record the
	// outcome, between the broker's confirm and the settle).
	ReclaimedFrom string
}

// ClaimOutbox claims up to limit due outbox entries, oldest first, for
// owner until lease has passed, and returns them in id order. An entry is
// due when its retry delay has passed and nobody holds an unexpired claim
// on it: entries claimed by another owner are skipped, and a claim whose
// lease ended is taken over (see OutboxEntry.ReclaimedFrom). Leases run on
// the database's clock, so the instances' clocks need not agree. One statement
// claims the whole batch: on PostgreSQL its rows are locked with FOR
// UPDATE SKIP LOCKED, so concurrent claimers never get the same entry. On
// SQLite, whose database has one instance, the due entries are read beside
// the writer and claimed in memory (see outboxClaims), on this process's
// clock. The owner settles (Settle) or releases (ReleaseOutbox) each entry
// it claimed.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, limit int, lease time.Duration) ([]OutboxEntry, error) {
	if s.dialect == "sqlite" {
		return s.claimOutboxLocal(ctx, owner, limit, lease)
	}
	now := time.Now()
	type claim struct {
		id       int64
		uuid     string
		attempts int
		from     sql.NullString
	}
	var claims []claim
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		claims = claims[:0]
		rows, err := tx.QueryContext(ctx, s.q(s.claimOutboxPostgres()), micros(now), limit, owner, lease.Microseconds())
		if err != nil {
			return fmt.Errorf("claim outbox entries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c claim
			if err := rows.Scan(&c.id, &c.uuid, &c.attempts, &c.from); err != nil {
				return fmt.Errorf("claim outbox entries: %w", err)
			}
			claims = append(claims, c)
		}
		return rows.Err()
	})
	if err != nil || len(claims) == 0 {
		return nil, err
	}
	slices.SortFunc(claims, func(a, b claim) int { return cmp.Compare(a.id, b.id) })

	// The triggers are read after the claim commits, beside the writer.
	byUUID := make(map[string]Trigger, len(claims))
	for chunk := range slices.Chunk(claims, 500) {
		args := make([]any, len(chunk))
		for i, c := range chunk {
			args[i] = c.uuid
		}
		if err = s.readTriggers(ctx, byUUID, args); err != nil {
			break
		}
	}
	out := make([]OutboxEntry, 0, len(claims))
	for _, c := range claims {
		t, ok := byUUID[c.uuid]
		if !ok && err == nil {
			err = fmt.Errorf("claim outbox entries: trigger %s of entry %d not found", c.uuid, c.id)
		}
		out = append(out, OutboxEntry{ID: c.id, Trigger: t, Attempts: c.attempts, ReclaimedFrom: c.from.String})
	}
	if err != nil {
		// Give the claims back rather than leave them to expire.
		ids := make([]OutboxRelease, len(out))
		for i, e := range out {
			ids[i] = OutboxRelease{ID: e.ID}
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return nil, errors.Join(err, s.ReleaseOutbox(rctx, owner, ids))
	}
	return out, nil
}

// readTriggers adds the triggers whose uuids are args to byUUID.
func (s *Store) readTriggers(ctx context.Context, byUUID map[string]Trigger, args []any) error {
	rows, err := s.r.QueryContext(ctx, s.q("SELECT "+triggerColumns+" FROM triggers WHERE uuid IN ("+placeholders(len(args))+")"), args...)
	if err != nil {
		return fmt.Errorf("read claimed triggers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return fmt.Errorf("read claimed triggers: %w", err)
		}
		byUUID[t.UUID] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read claimed triggers: %w", err)
	}
	return nil
}

// Settle records the outcome of publishing outbox entries claimed by
// owner, in one transaction: each entry is removed and its trigger marked
// published or unroutable at the given time. Entries owner no longer
// holds (gone already, or requeued meanwhile) are left alone; an entry
// whose claim expired but that nobody took over is still owner's.
func (s *Store) Settle(ctx context.Context, owner string, published, unroutable []int64, at time.Time) error {
	if len(published)+len(unroutable) == 0 {
		return nil
	}
	if s.dialect == "sqlite" {
		return s.settleLocal(ctx, owner, published, unroutable, at)
	}
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, batch := range []struct {
			ids    []int64
			status Status
		}{{published, StatusPublished}, {unroutable, StatusUnroutable}} {
			for chunk := range slices.Chunk(batch.ids, 500) {
				if err := s.settle(ctx, tx, owner, chunk, batch.status, at); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// settle removes owner's outbox entries ids and marks their triggers
// status.
func (s *Store) settle(ctx context.Context, tx *sql.Tx, owner string, ids []int64, status Status, at time.Time) error {
	in := placeholders(len(ids))
	args := make([]any, 0, len(ids)+1)
	args = append(args, owner)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, s.q("DELETE FROM outbox WHERE claimed_by = ? AND id IN ("+in+") RETURNING trigger_uuid"), args...)
	if err != nil {
		return fmt.Errorf("settle outbox entries: %w", err)
	}
	args = append(args[:0], string(status), micros(at))
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
		return nil // entries no longer owner's
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE triggers SET status = ?, published_at = ? WHERE uuid IN ("+placeholders(settled)+")"), args...); err != nil {
		return fmt.Errorf("settle triggers: %w", err)
	}
	return nil
}

// OutboxRelease gives back the claim of an outbox entry that was not
// published.
type OutboxRelease struct {
	ID int64
	// Failed counts a failed attempt: the entry is due again after Delay,
	// with Error recorded. Otherwise the entry was not attempted (the
	// service stops, the broker blocks the connection) and is due as it
	// was.
	Failed bool
	Delay  time.Duration
	Error  string
}

// ReleaseOutbox gives back owner's claims of entries in one transaction;
// entries owner no longer holds are left alone.
func (s *Store) ReleaseOutbox(ctx context.Context, owner string, entries []OutboxRelease) error {
	if len(entries) == 0 {
		return nil
	}
	if s.dialect == "sqlite" {
		return s.releaseOutboxLocal(ctx, owner, entries)
	}
	now := time.Now()
	var untried []any
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		untried = untried[:0]
		for _, e := range entries {
			if !e.Failed {
				untried = append(untried, e.ID)
				continue
			}
			if _, err := s.txExec(ctx, tx, qRetryOutbox, micros(now.Add(e.Delay)), e.Error, e.ID, owner); err != nil {
				return fmt.Errorf("release outbox entry %d: %w", e.ID, err)
			}
		}
		for chunk := range slices.Chunk(untried, 500) {
			args := append([]any{owner}, chunk...)
			if _, err := tx.ExecContext(ctx, s.q("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND id IN ("+placeholders(len(chunk))+")"), args...); err != nil {
				return fmt.Errorf("release outbox entries: %w", err)
			}
		}
		return nil
	})
	return err
}

// ReleaseOutboxClaims frees every outbox entry claimed by owner and
// reports how many: an instance calls it when it starts, since the claims
// its previous run held will never be settled.
func (s *Store) ReleaseOutboxClaims(ctx context.Context, owner string) (int, error) {
	n, err := s.exec(ctx, "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?", owner)
	if err != nil {
		return 0, fmt.Errorf("release outbox claims: %w", err)
	}
	if s.dialect == "sqlite" {
		n += int64(s.releaseOutboxClaimsLocal(owner))
	}
	return int(n), nil
}

// OutboxClaims counts the unexpired outbox claims of each owner.
func (s *Store) OutboxClaims(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT claimed_by, count(*) FROM outbox WHERE claimed_by IS NOT NULL AND claimed_until >= "+s.nowMicros()+" GROUP BY claimed_by")
	if err != nil {
		return nil, fmt.Errorf("count outbox claims: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			owner string
			n     int
		)
		if err := rows.Scan(&owner, &n); err != nil {
			return nil, fmt.Errorf("count outbox claims: %w", err)
		}
		out[owner] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count outbox claims: %w", err)
	}
	if s.dialect == "sqlite" {
		s.outboxClaimsLocal(out)
	}
	return out, nil
}

// Requeue puts a trigger back in the outbox to be published again, due
// now and free of any claim, and marks it pending; ErrNotFound when
// unknown.
func (s *Store) Requeue(ctx context.Context, uuid string) (Trigger, error) {
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE triggers SET status = ?, published_at = NULL WHERE uuid = ?"), string(StatusPending), uuid)
		if err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("trigger %s: %w", uuid, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO outbox (trigger_uuid, next_attempt_at) VALUES (?, ?) ON CONFLICT (trigger_uuid)
			DO UPDATE SET next_attempt_at = excluded.next_attempt_at, claimed_by = NULL, claimed_until = NULL`),
			uuid, micros(time.Now()))
		if err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		if s.dialect == "sqlite" {
			s.unclaimTrigger(uuid)
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

// outboxDue holds for an outbox entry due for publishing at ? (the
// caller's clock, which set next_attempt_at): its retry delay passed, and
// it is free or its claim expired on the database's clock.
func (s *Store) outboxDue() string {
	return "next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < " + s.nowMicros() + ")"
}

// claimOutboxPostgres claims on PostgreSQL; its arguments are now, the
// limit, the owner and the lease in microseconds. The locking CTE runs
// once, whatever the plan.
func (s *Store) claimOutboxPostgres() string {
	return `WITH c AS (SELECT id FROM outbox WHERE ` + s.outboxDue() + ` ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET reclaimed_from = o.claimed_by, claimed_by = ?, claimed_until = ` + s.nowMicros() + ` + ?
		FROM c WHERE o.id = c.id
		RETURNING o.id, o.trigger_uuid, o.attempts, o.reclaimed_from`
}

var qRetryOutbox = hot(`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
	claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?`)
