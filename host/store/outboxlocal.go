package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// outboxClaims holds SQLite's outbox claims. The database has one
// instance (its file is in the instance's DATA_DIR), so, as with spool
// tasks (see localClaims), claims are kept in memory and never written: a
// claim is a read beside the writer, not a write transaction and its
// fsync, and a settle deletes the entries without checking a claim column.
// The database's claimed_by and claimed_until stay empty on SQLite
// (ReleaseOutboxClaims clears what an earlier version left there; a claim
// left unexpired there is honoured until it ends).
type outboxClaims struct {
	mu     sync.Mutex
	m      map[int64]outboxClaim
	purged int64 // micros of the last purge of ended entries
	// reading counts the claims reading the database: while one is, an
	// entry whose claim ends because it was settled or retried is marked
	// rather than forgotten, since that claim may have read it as it was
	// before the commit.
	reading int
}

// outboxClaim is an entry's claim, or, with owner "", a mark that keeps
// the entry from being claimed until it ends (see reading).
type outboxClaim struct {
	owner string
	// until is when the claim, or the mark, ends (microseconds).
	until int64
	uuid  string
}

// purge drops the ended entries, at most once a second.
func (l *outboxClaims) purge(now int64) {
	purgeEnded(l.m, &l.purged, now, func(c outboxClaim) int64 { return c.until })
}

// hold returns those of ids that owner claimed, expired or not (an
// expired claim nobody took over is still owner's), with their triggers'
// uuids, and keeps their claims for at least settledFor, so that nobody
// takes one over while its outcome is recorded.
func (l *outboxClaims) hold(owner string, ids []int64) (held []int64, uuids []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := micros(time.Now().Add(settledFor))
	for _, id := range ids {
		if c, ok := l.m[id]; ok && c.owner == owner {
			c.until = max(c.until, until)
			l.m[id] = c
			held = append(held, id)
			uuids = append(uuids, c.uuid)
		}
	}
	return held, uuids
}

// end ends the claims of ids: the entries are forgotten, or, while a
// claim reads the database, marked until until.
func (l *outboxClaims) end(ids []int64, until int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.reading == 0 {
			delete(l.m, id)
			continue
		}
		l.m[id] = outboxClaim{until: until, uuid: l.m[id].uuid}
	}
}

// outboxDueSQLite reads, beside the writer, the due outbox entries with
// their triggers, oldest first; its arguments are now and the limit.
var outboxDueSQLite = hotRead(`SELECT ` + triggerColumnsOf("t") + `, o.id, o.attempts, o.claimed_by
	FROM outbox o JOIN triggers t ON t.uuid = o.trigger_uuid
	WHERE o.next_attempt_at <= ? AND (o.claimed_until IS NULL OR o.claimed_until < CAST(unixepoch('subsec') * 1000000 AS INTEGER))
	ORDER BY o.id LIMIT ?`)

// triggerColumnsOf is triggerColumns, each prefixed with alias.
func triggerColumnsOf(alias string) string {
	cols := strings.Split(triggerColumns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

// claimOutboxLocal is ClaimOutbox on SQLite: the due entries are read on
// a read connection and claimed in memory.
func (s *Store) claimOutboxLocal(ctx context.Context, owner string, limit int, lease time.Duration) ([]OutboxEntry, error) {
	now := time.Now()
	nowUS := micros(now)
	l := &s.outbox
	l.mu.Lock()
	l.purge(nowUS)
	l.reading++
	// Entries claimed or marked are read too and skipped: read enough to
	// find limit others.
	n := limit + len(l.m)
	l.mu.Unlock()
	due, err := s.readDueOutbox(ctx, nowUS, n)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reading--
	if err != nil {
		return nil, err
	}
	until := micros(now.Add(lease))
	out := due[:0]
	for _, e := range due {
		if len(out) == limit {
			break
		}
		c, ok := l.m[e.ID]
		if ok && c.until >= nowUS {
			continue
		}
		if ok && c.owner != "" {
			e.ReclaimedFrom = c.owner
		}
		l.m[e.ID] = outboxClaim{owner: owner, until: until, uuid: e.Trigger.UUID}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// readDueOutbox reads up to limit due outbox entries with their triggers.
func (s *Store) readDueOutbox(ctx context.Context, now int64, limit int) ([]OutboxEntry, error) {
	rows, err := s.query(ctx, outboxDueSQLite, now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim outbox entries: %w", err)
	}
	defer rows.Close()
	var due []OutboxEntry
	for rows.Next() {
		var (
			e    OutboxEntry
			from sql.NullString
		)
		if e.Trigger, err = scanTrigger(rows, &e.ID, &e.Attempts, &from); err != nil {
			return nil, fmt.Errorf("claim outbox entries: %w", err)
		}
		e.ReclaimedFrom = from.String
		due = append(due, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox entries: %w", err)
	}
	return due, nil
}

// settleLocal is Settle on SQLite: the entries owner holds are removed and
// their triggers marked.
func (s *Store) settleLocal(ctx context.Context, owner string, published, unroutable []int64, at time.Time) error {
	var settled []int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		settled = settled[:0]
		for _, batch := range []struct {
			ids    []int64
			status Status
		}{{published, StatusPublished}, {unroutable, StatusUnroutable}} {
			for chunk := range slices.Chunk(batch.ids, 500) {
				ids, uuids := s.outbox.hold(owner, chunk)
				if len(ids) == 0 {
					continue
				}
				args := make([]any, len(ids))
				for i, id := range ids {
					args[i] = id
				}
				if _, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE id IN ("+placeholders(len(args))+")", args...); err != nil {
					return fmt.Errorf("settle outbox entries: %w", err)
				}
				args = append(append(args[:0], string(batch.status), micros(at)), uuids...)
				if _, err := tx.ExecContext(ctx, "UPDATE triggers SET status = ?, published_at = ? WHERE uuid IN ("+placeholders(len(uuids))+")", args...); err != nil {
					return fmt.Errorf("settle triggers: %w", err)
				}
				settled = append(settled, ids...)
			}
		}
		return nil
	})
	if err != nil {
		// The entries stay claimed until their lease ends.
		return err
	}
	s.outbox.end(settled, micros(time.Now().Add(settledFor)))
	return nil
}

// releaseOutboxLocal is ReleaseOutbox on SQLite: a failed attempt is
// counted in the database and the entry marked until its retry is due;
// the others are given back in memory alone.
func (s *Store) releaseOutboxLocal(ctx context.Context, owner string, entries []OutboxRelease) error {
	now := time.Now()
	var (
		failed  []OutboxRelease
		untried []int64
	)
	s.outbox.mu.Lock()
	for _, e := range entries {
		if c, ok := s.outbox.m[e.ID]; !ok || c.owner != owner {
			continue
		}
		if e.Failed {
			failed = append(failed, e)
		} else {
			untried = append(untried, e.ID)
		}
	}
	s.outbox.mu.Unlock()
	s.outbox.end(untried, micros(now))
	if len(failed) == 0 {
		return nil
	}
	var counted []OutboxRelease
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		counted = counted[:0]
		for _, e := range failed {
			s.outbox.mu.Lock()
			c, ok := s.outbox.m[e.ID]
			s.outbox.mu.Unlock()
			if !ok || c.owner != owner {
				continue // requeued meanwhile
			}
			if _, err := s.txExec(ctx, tx, qRetryOutboxLocal, micros(now.Add(e.Delay)), e.Error, e.ID); err != nil {
				return fmt.Errorf("release outbox entry %d: %w", e.ID, err)
			}
			counted = append(counted, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range counted {
		s.outbox.end([]int64{e.ID}, micros(now.Add(e.Delay)))
	}
	return nil
}

// unclaimTrigger drops the claim or mark of uuid's outbox entry (Requeue,
// in its transaction).
func (s *Store) unclaimTrigger(uuid string) {
	s.outbox.mu.Lock()
	defer s.outbox.mu.Unlock()
	for id, c := range s.outbox.m {
		if c.uuid == uuid {
			delete(s.outbox.m, id)
		}
	}
}

// releaseOutboxClaimsLocal drops owner's claims held in memory and reports
// how many.
func (s *Store) releaseOutboxClaimsLocal(owner string) int {
	s.outbox.mu.Lock()
	defer s.outbox.mu.Unlock()
	n := 0
	for id, c := range s.outbox.m {
		if c.owner == owner {
			delete(s.outbox.m, id)
			n++
		}
	}
	return n
}

// outboxClaimsLocal adds the unexpired claims held in memory to count.
func (s *Store) outboxClaimsLocal(count map[string]int) {
	now := micros(time.Now())
	s.outbox.mu.Lock()
	defer s.outbox.mu.Unlock()
	for _, c := range s.outbox.m {
		if c.owner != "" && c.until >= now {
			count[c.owner]++
		}
	}
}

var qRetryOutboxLocal = hot(`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?`)
