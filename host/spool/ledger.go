package spool

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/routinglayer/routing/host/store"
)

// ledger keeps intake's figures of the spool in memory: pending tasks per
// pusher and the bytes of stored rows that wait for delivery. Intake
// checks a request against them and reserves its share in one step under
// a lock, before the insert, so concurrent requests can never take a
// pusher past MaxBacklog or the spool past MaxSpoolBytes: a reservation
// counts as soon as it is made and is given back if the insert fails.
// Every change of a task's state made by this instance updates the
// figures once its transaction has committed.
//
// With a database shared by several instances, others change the spool
// too, so the figures are read again from the store every second (sync).
// Changes that commit while such a read is under way may be counted twice
// until the next read, never missed: the figures can run high for a
// moment, never low.
type ledger struct {
	maxBacklog int
	maxBytes   int64
	// maxAge bounds how long a delivering pusher's oldest due task may
	// have waited (0: no bound); oldest is that task's due time per
	// pusher, as last read (see Spool.Run).
	maxAge time.Duration
	oldest map[string]time.Time

	mu      sync.Mutex
	pending map[string]int // pending tasks per pusher, reservations included
	bytes   int64          // bytes of rows waiting, reservations included
	// Reservations not yet committed or given back.
	reserved      map[string]int
	reservedBytes int64
	// syncing collects what was committed while a sync reads the store;
	// nil between syncs.
	syncing *reservation
}

// reservation is one request's share of the figures.
type reservation struct {
	pushers map[string]int
	bytes   int64
}

func newLedger(maxBacklog int, maxBytes int64, maxAge time.Duration) *ledger {
	return &ledger{maxBacklog: maxBacklog, maxBytes: maxBytes, maxAge: maxAge, pending: map[string]int{}, reserved: map[string]int{}}
}

// setOldest records each pusher's oldest due task (none: absent).
func (l *ledger) setOldest(oldest map[string]time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.oldest = oldest
}

// age is how long pusher's oldest due task has waited; l.mu held.
func (l *ledger) age(pusher string, now time.Time) time.Duration {
	at, ok := l.oldest[pusher]
	if !ok || at.After(now) {
		return 0
	}
	return now.Sub(at)
}

// refusal says why a request cannot be taken now.
type refusal struct {
	// spoolFull is set when the request's bytes would pass MaxSpoolBytes;
	// spoolBytes is then what the spool holds.
	spoolFull  bool
	spoolBytes int64
	// full lists the delivering pushers at their backlog limit; pending
	// has every given pusher's pending tasks.
	full    []string
	pending map[string]int
	// behind lists the delivering pushers whose oldest due task waited
	// longer than MaxBacklogAge, with that wait.
	behind map[string]time.Duration
}

// onlyBehind reports whether the refusal is only for delivery being
// behind (MaxBacklogAge), which a short wait may lift.
func (r *refusal) onlyBehind() bool {
	return !r.spoolFull && len(r.full) == 0 && len(r.behind) > 0
}

// admit reserves one task for each of pushers and size bytes of rows, or
// refuses: when the bytes would pass MaxSpoolBytes, or when a pusher that
// is not paused has MaxBacklog pending tasks or a due task waiting for
// longer than MaxBacklogAge. A paused pusher (failed, or
// stopped by an operator) gets its task whatever its backlog.
func (l *ledger) admit(pushers []Pusher, size int64) (*reservation, *refusal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ref *refusal
	if l.bytes+size > l.maxBytes {
		ref = &refusal{spoolFull: true, spoolBytes: l.bytes}
	}
	now := time.Now()
	for _, p := range pushers {
		if !p.Paused && l.pending[p.Name] >= l.maxBacklog {
			if ref == nil {
				ref = &refusal{}
			}
			ref.full = append(ref.full, p.Name)
		}
		if age := l.age(p.Name, now); !p.Paused && l.maxAge > 0 && age > l.maxAge {
			if ref == nil {
				ref = &refusal{}
			}
			if ref.behind == nil {
				ref.behind = map[string]time.Duration{}
			}
			ref.behind[p.Name] = age
		}
	}
	if ref != nil {
		ref.pending = make(map[string]int, len(pushers))
		for _, p := range pushers {
			ref.pending[p.Name] = l.pending[p.Name]
		}
		return nil, ref
	}
	res := &reservation{pushers: make(map[string]int, len(pushers)), bytes: size}
	for _, p := range pushers {
		res.pushers[p.Name]++
		l.pending[p.Name]++
		l.reserved[p.Name]++
	}
	l.bytes += size
	l.reservedBytes += size
	return res, nil
}

// commit records that a reservation's insert committed.
func (l *ledger) commit(res *reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unreserve(res)
	if l.syncing != nil {
		l.syncing.add(res.pushers, res.bytes)
	}
}

// cancel gives back a reservation whose insert failed.
func (l *ledger) cancel(res *reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unreserve(res)
	for p, n := range res.pushers {
		l.pending[p] -= n
	}
	l.bytes -= res.bytes
}

func (l *ledger) unreserve(res *reservation) {
	for p, n := range res.pushers {
		if l.reserved[p] -= n; l.reserved[p] <= 0 {
			delete(l.reserved, p)
		}
	}
	l.reservedBytes -= res.bytes
}

func (r *reservation) add(pushers map[string]int, bytes int64) {
	for p, n := range pushers {
		r.pushers[p] += n
	}
	r.bytes += bytes
}

// settled records that tasks of pusher left the pending state, freeing
// freed bytes of rows.
func (l *ledger) settled(pusher string, tasks int, freed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[pusher] = max(l.pending[pusher]-tasks, 0)
	l.bytes = max(l.bytes-freed, 0)
}

// reopened records that tasks of pusher became pending again (a dead
// letter retried), adding bytes of rows.
func (l *ledger) reopened(pusher string, tasks int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[pusher] += tasks
	l.bytes += bytes
	if l.syncing != nil {
		l.syncing.add(map[string]int{pusher: tasks}, bytes)
	}
}

// sync replaces the figures with the store's, plus the reservations in
// flight and what committed while the store was read.
func (l *ledger) sync(ctx context.Context, read func(context.Context) (store.SpoolUsage, error)) error {
	l.mu.Lock()
	l.syncing = &reservation{pushers: map[string]int{}}
	l.mu.Unlock()
	u, err := read(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	during := l.syncing
	l.syncing = nil
	if err != nil {
		return err
	}
	pending := maps.Clone(u.Pending)
	if pending == nil {
		pending = map[string]int{}
	}
	for p, n := range l.reserved {
		pending[p] += n
	}
	for p, n := range during.pushers {
		pending[p] += n
	}
	l.pending = pending
	l.bytes = u.Bytes + l.reservedBytes + during.bytes
	return nil
}

// usage returns the figures: pending tasks per pusher and bytes waiting.
func (l *ledger) usage() (map[string]int, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.pending), l.bytes
}
