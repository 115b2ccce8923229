package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease is the lease on one watcher instance name: which service
// instance runs the watcher, until when, and the operator requests every
// instance follows.
type Lease struct {
	// Name is the watcher instance name.
	Name string
	// Holder is the instance id holding the lease, "" when none does
	// (never taken, released, or taken back by a stop).
	Holder string
	// ExpiresAt is when the holder's lease lapses unless renewed, on the
	// database's clock; zero once released.
	ExpiresAt time.Time
	// Stopped is true while an operator's stop is in force: no instance
	// may acquire the lease, and the holder gives it up.
	Stopped bool
	// Restarts and Starts count operator restarts and starts since the
	// row was made; the holder acts on a change.
	Restarts, Starts int64
}

// nowMicros is the database's clock in microseconds since the epoch, as
// SQL: every instance sharing a database compares lease expiries on one
// clock, whatever the skew between their hosts.
func (s *Store) nowMicros() string {
	if s.dialect == "postgres" {
		return "CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT)"
	}
	return "CAST(unixepoch('subsec') * 1000000 AS INTEGER)"
}

const leaseColumns = "name, holder, expires_at, stopped, restarts, starts"

func scanLease(row interface{ Scan(...any) error }) (Lease, error) {
	var (
		l       Lease
		expires int64
	)
	if err := row.Scan(&l.Name, &l.Holder, &expires, &l.Stopped, &l.Restarts, &l.Starts); err != nil {
		return Lease{}, err
	}
	if expires > 0 {
		l.ExpiresAt = fromMicros(expires)
	}
	return l, nil
}

// LeaseAcquire takes the lease on name for holder for ttl, or renews it:
// in one statement, it succeeds when no stop is in force and the lease is
// free, expired, or already holder's. acquired reports whether holder
// holds the lease now; the Lease is the row as it then is (naming the
// other holder, or the stop, when not acquired). ttl must be positive.
func (s *Store) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, acquired bool, err error) {
	if holder == "" || ttl <= 0 {
		return Lease{}, false, fmt.Errorf("lease %s: want a holder and a positive ttl, got %q and %s", name, holder, ttl)
	}
	now := s.nowMicros()
	query := `INSERT INTO watcher_leases (name, holder, expires_at, updated_at) VALUES (?, ?, ` + now + ` + ?, ` + now + `)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, updated_at = excluded.updated_at
		WHERE NOT watcher_leases.stopped AND (watcher_leases.holder = excluded.holder OR watcher_leases.expires_at < excluded.updated_at)
		RETURNING ` + leaseColumns
	var scanErr error
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		l, scanErr = scanLease(s.txQueryRow(ctx, tx, query, name, holder, ttl.Microseconds()))
		if errors.Is(scanErr, sql.ErrNoRows) {
			return nil // the row is another's, or stopped: nothing changed
		}
		return scanErr
	})
	switch {
	case err != nil:
		return Lease{}, false, fmt.Errorf("lease %s: acquire: %w", name, err)
	case scanErr == nil:
		return l, true, nil
	}
	// Held by another instance, or stopped.
	l, err = s.LeaseGet(ctx, name)
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease %s: acquire: %w", name, err)
	}
	return l, false, nil
}

// LeaseRelease gives up holder's lease on name so that another instance
// may take it at once; a lease holder does not hold is left alone.
func (s *Store) LeaseRelease(ctx context.Context, name, holder string) error {
	_, err := s.exec(ctx, `UPDATE watcher_leases SET holder = '', expires_at = 0, updated_at = `+s.nowMicros()+`
		WHERE name = ? AND holder = ?`, name, holder)
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", name, err)
	}
	return nil
}

// LeaseGet returns the lease on name, or ErrNotFound when no instance
// has asked for it yet.
func (s *Store) LeaseGet(ctx context.Context, name string) (Lease, error) {
	l, err := scanLease(s.r.QueryRowContext(ctx, s.q("SELECT "+leaseColumns+" FROM watcher_leases WHERE name = ?"), name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Lease{}, fmt.Errorf("lease %s: %w", name, ErrNotFound)
	case err != nil:
		return Lease{}, fmt.Errorf("lease %s: %w", name, err)
	}
	return l, nil
}

// LeaseStop records an operator's stop of name for every instance: no
// instance acquires the lease until LeaseStart or LeaseRestart, and the
// holder's next renewal fails, so it stops its process and releases it.
func (s *Store) LeaseStop(ctx context.Context, name string) error {
	return s.leaseRequest(ctx, name, "stop", "stopped = TRUE")
}

// LeaseStart ends an operator's stop of name and counts a start (Starts):
// some instance acquires the lease, and a holder whose watcher failed
// starts it again.
func (s *Store) LeaseStart(ctx context.Context, name string) error {
	return s.leaseRequest(ctx, name, "start", "stopped = FALSE, starts = watcher_leases.starts + 1")
}

// LeaseRestart ends an operator's stop of name and counts a restart
// (Restarts): the holder restarts its process.
func (s *Store) LeaseRestart(ctx context.Context, name string) error {
	return s.leaseRequest(ctx, name, "restart", "stopped = FALSE, restarts = watcher_leases.restarts + 1")
}

// leaseRequest applies set to name's row, making the row if needed.
func (s *Store) leaseRequest(ctx context.Context, name, what, set string) error {
	stopped := "FALSE"
	if what == "stop" {
		stopped = "TRUE"
	}
	now := s.nowMicros()
	_, err := s.exec(ctx, `INSERT INTO watcher_leases (name, stopped, updated_at) VALUES (?, `+stopped+`, `+now+`)
		ON CONFLICT (name) DO UPDATE SET `+set+`, updated_at = excluded.updated_at`, name)
	if err != nil {
		return fmt.Errorf("lease %s: %s: %w", name, what, err)
	}
	return nil
}
