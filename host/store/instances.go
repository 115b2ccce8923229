package store

import (
	"context"
	"fmt"
	"time"
)

// Instance is a running instance of a service, as its heartbeats record
// it.
type Instance struct {
	Service, ID string
	// StartedAt is when the instance started, on its own clock; LastSeen
	// its latest heartbeat, on the database's clock.
	StartedAt, LastSeen time.Time
}

// Heartbeat records that instance id of service, started at started, is
// alive now.
func (s *Store) Heartbeat(ctx context.Context, service, id string, started time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO instances (service, id, started_at, last_seen) VALUES (?, ?, ?, `+s.nowMicros()+`)
		ON CONFLICT (service, id) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen`,
		service, id, micros(started))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// RemoveInstance forgets an instance: it calls this when it stops.
func (s *Store) RemoveInstance(ctx context.Context, service, id string) error {
	if _, err := s.exec(ctx, "DELETE FROM instances WHERE service = ? AND id = ?", service, id); err != nil {
		return fmt.Errorf("remove instance: %w", err)
	}
	return nil
}

// Instances lists the instances of service whose latest heartbeat is no
// older than within, by id.
func (s *Store) Instances(ctx context.Context, service string, within time.Duration) ([]Instance, error) {
	rows, err := s.r.QueryContext(ctx, s.q("SELECT id, started_at, last_seen FROM instances WHERE service = ? AND last_seen >= "+s.nowMicros()+" - ? ORDER BY id"),
		service, within.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		in := Instance{Service: service}
		var started, seen int64
		if err := rows.Scan(&in.ID, &started, &seen); err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		in.StartedAt, in.LastSeen = fromMicros(started), fromMicros(seen)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return out, nil
}

// PruneInstances forgets the instances of service not seen for longer
// than age: stopped or dead ones, long gone.
func (s *Store) PruneInstances(ctx context.Context, service string, age time.Duration) error {
	if _, err := s.exec(ctx, "DELETE FROM instances WHERE service = ? AND last_seen < "+s.nowMicros()+" - ?", service, age.Microseconds()); err != nil {
		return fmt.Errorf("prune instances: %w", err)
	}
	return nil
}

// InstanceHoldings is what the instances sharing the database hold now,
// by instance id.
type InstanceHoldings struct {
	// OutboxClaims counts unexpired outbox claims.
	OutboxClaims map[string]int
	// WatcherLeases lists the watcher names whose unexpired lease each
	// instance holds, sorted.
	WatcherLeases map[string][]string
}

// Holdings reads what each instance holds now: its unexpired outbox claims
// and watcher leases.
func (s *Store) Holdings(ctx context.Context) (InstanceHoldings, error) {
	claims, err := s.OutboxClaims(ctx)
	if err != nil {
		return InstanceHoldings{}, err
	}
	h := InstanceHoldings{OutboxClaims: claims, WatcherLeases: map[string][]string{}}
	rows, err := s.r.QueryContext(ctx, "SELECT holder, name FROM watcher_leases WHERE holder <> '' AND expires_at >= "+s.nowMicros()+" ORDER BY name")
	if err != nil {
		return InstanceHoldings{}, fmt.Errorf("list watcher leases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var holder, name string
		if err := rows.Scan(&holder, &name); err != nil {
			return InstanceHoldings{}, fmt.Errorf("list watcher leases: %w", err)
		}
		h.WatcherLeases[holder] = append(h.WatcherLeases[holder], name)
	}
	if err := rows.Err(); err != nil {
		return InstanceHoldings{}, fmt.Errorf("list watcher leases: %w", err)
	}
	return h, nil
}
