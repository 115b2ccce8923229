package store

import (
	"sync"
	"time"
)

// localClaims is what this process knows of its tasks beyond the
// database.
//
// With SQLite, the database has one instance (its file is in the
// instance's DATA_DIR), so claims are kept here and never written: a push
// costs no claim commit. The database's claimed_by and claimed_until stay
// empty (ReleaseClaims clears what an earlier version left there).
//
// With both databases, a task whose outcome is known (pushed and
// delivered, skipped or dead) but not yet committed is settled here: a
// claim reads its line as if it were finished, so the uuid's next batch is
// pushed while the outcome is being recorded. With SQLite a settled task
// stays marked for settledFor after its outcome is committed, so that a
// claim that read the database before that commit does not take it again.
type localClaims struct {
	mu     sync.Mutex
	m      map[int64]localClaim
	purged int64 // micros of the last purge of expired entries
}

type localClaim struct {
	owner string
	// until is when the claim, or the settled mark, ends (microseconds).
	until   int64
	settled bool
	// done is set once the settled outcome is committed.
	done bool
}

// settledFor is how long a settled task stays marked after its outcome is
// committed: longer than any claim's read of the database takes.
const settledFor = 10 * time.Second

// get returns the live entry of a task.
func (l *localClaims) get(id, now int64) (localClaim, bool) {
	c, ok := l.m[id]
	if !ok || c.until < now {
		return localClaim{}, false
	}
	return c, true
}

// purge drops the expired entries, at most once a second.
func (l *localClaims) purge(now int64) {
	purgeEnded(l.m, &l.purged, now, func(c localClaim) int64 { return c.until })
}

// purgeEnded drops the entries of m that ended before now (their end is
// until's), at most once a second: *last is when it last did.
func purgeEnded[C any](m map[int64]C, last *int64, now int64, until func(C) int64) {
	if now-*last < int64(time.Second/time.Microsecond) {
		return
	}
	*last = now
	for id, c := range m {
		if until(c) < now {
			delete(m, id)
		}
	}
}

// overlay applies the entries to tasks read from the database: settled
// tasks are left out, claimed ones get their claim's end.
func (l *localClaims) overlay(tasks []pendingTask, now int64) []pendingTask {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) == 0 {
		return tasks
	}
	out := tasks[:0]
	for _, t := range tasks {
		if c, ok := l.get(t.id, now); ok {
			if c.settled {
				continue
			}
			if !t.until.Valid || t.until.Int64 < c.until {
				t.until.Int64, t.until.Valid = c.until, true
			}
		}
		out = append(out, t)
	}
	return out
}

// SettleTasks marks owner's claimed tasks whose outcome is known and about to
// be recorded (FinishTasks): claims read their lines as if they were
// finished, so a uuid's next batch can be pushed meanwhile. FinishTasks
// ends the mark; if it fails, the tasks are claimed by owner again.
func (s *Store) SettleTasks(owner string, ids []int64) {
	now := micros(time.Now())
	until := micros(time.Now().Add(settledFor))
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	for _, id := range ids {
		c, ok := s.local.get(id, now)
		if !ok {
			c = localClaim{owner: owner, until: until}
		}
		if c.owner == owner && !c.done {
			c.settled = true
			s.local.m[id] = c
		}
	}
}

// holds reports whether owner holds every one of ids in memory (SQLite's
// claims), settled or not.
func (s *Store) holds(owner string, ids []int64) bool {
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	for _, id := range ids {
		if c, ok := s.local.m[id]; !ok || c.owner != owner || c.done {
			return false
		}
	}
	return true
}

// finished records that ids' outcome committed (finished is true) or
// could not be (their settled mark is taken back).
func (s *Store) finished(ids []int64, committed bool) {
	now := micros(time.Now())
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	for _, id := range ids {
		c, ok := s.local.m[id]
		switch {
		case !ok:
		case committed && s.dialect == "postgres":
			delete(s.local.m, id) // the database says it all now
		case committed:
			c.settled, c.done, c.until = true, true, max(c.until, micros(time.Now().Add(settledFor)))
			s.local.m[id] = c
		case c.done:
		default:
			c.settled = false
			c.until = max(c.until, now)
			s.local.m[id] = c
		}
	}
}

// unclaim drops owner's entries of ids; with until > 0 they stay claimed
// by nobody until then (a retry's delay), so that a claim that read the
// database before the change does not take them early.
func (s *Store) unclaim(owner string, ids []int64, until int64) {
	s.local.mu.Lock()
	defer s.local.mu.Unlock()
	for _, id := range ids {
		if c, ok := s.local.m[id]; ok && c.owner == owner {
			if until > 0 {
				s.local.m[id] = localClaim{until: until}
			} else {
				delete(s.local.m, id)
			}
		}
	}
}
