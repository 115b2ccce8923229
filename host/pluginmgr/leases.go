package pluginmgr

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leases lets services that share one database run each plugin instance
// name in exactly one of them at a time: the holder of the name's lease.
// An implementation knows which instance it speaks for. Config.Leases nil
// means no leases: every service runs every plugin it finds.
type Leases interface {
	// Acquire takes the lease on name for ttl, or renews it, in one
	// atomic step: it succeeds (Lease.Held) when no operator's stop is
	// in force and the lease is free, expired or already this
	// instance's. Otherwise the Lease names the holder, or the stop.
	Acquire(ctx context.Context, name string, ttl time.Duration) (Lease, error)
	// Release gives up this instance's lease on name, so another
	// instance may take it at once; a lease it does not hold is left
	// alone.
	Release(ctx context.Context, name string) error
	// Stop records an operator's stop of name for every instance: no one
	// acquires the lease until Start or Restart, and the holder's next
	// renewal fails.
	Stop(ctx context.Context, name string) error
	// Start ends a stop and counts a start (Lease.Starts).
	Start(ctx context.Context, name string) error
	// Restart ends a stop and counts a restart (Lease.Restarts).
	Restart(ctx context.Context, name string) error
}

// Lease is what Leases reports about one name's lease.
type Lease struct {
	// Held is true when this instance holds the lease.
	Held bool
	// Holder is the instance id holding it, "" when none does.
	Holder string
	// Stopped is true while an operator's stop is in force.
	Stopped bool
	// Restarts and Starts count operator restarts and starts; the holder
	// restarts its process when Restarts changes, and starts a failed
	// plugin when Starts changes.
	Restarts, Starts int64
}

// DefaultLeaseTTL is a lease's lifetime unless renewed.
const DefaultLeaseTTL = 10 * time.Second

// renewInterval is how often a holder renews its lease: three renewals
// fit in one TTL, so one slow or failed renewal does not lose it.
func (m *Manager) renewInterval() time.Duration { return m.cfg.LeaseTTL / 3 }

// standbyInterval is how often an instance without the lease asks for it:
// a holder that died is replaced within TTL + TTL/5 (12s by default) plus
// the launch.
func (m *Manager) standbyInterval() time.Duration { return m.cfg.LeaseTTL / 5 }

// errLeaseStopped ends a holder's run when an operator's stop is in force.
var errLeaseStopped = errors.New("stopped by an operator")

// leased runs the plugin under its lease until ctx is done or the plugin
// is removed: standby (or stopped) while another instance holds the lease
// (or an operator's stop is in force), asking again every
// standbyInterval; supervised as without leases while holding it.
func (s *supervisor) leased(ctx context.Context) {
	var timer *time.Timer
	for {
		asked := time.Now()
		lease, err := s.m.cfg.Leases.Acquire(ctx, s.name, s.m.cfg.LeaseTTL)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			s.leaseTrouble("cannot ask for the lease", fmt.Errorf("lease: %w", err))
			s.set(func(s *supervisor) { s.state, s.pid, s.holder = StateStandby, 0, "" })
		case lease.Held:
			if s.hold(ctx, lease, asked) || ctx.Err() != nil {
				return
			}
			continue // show at once who holds it now, or the stop
		case lease.Stopped:
			s.set(func(s *supervisor) { s.state, s.pid, s.holder = StateStopped, 0, "" })
		default:
			s.set(func(s *supervisor) { s.state, s.pid, s.holder = StateStandby, 0, lease.Holder })
		}
		if timer == nil {
			timer = time.NewTimer(s.m.standbyInterval())
			defer timer.Stop()
		} else {
			timer.Reset(s.m.standbyInterval())
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.poke:
		case c := <-s.cmds:
			if c == cmdRemove {
				return
			}
			// Anything else (a changed file): the holder acts on it.
		}
	}
}

// hold supervises the plugin while this instance holds its lease, renewing
// it every renewInterval. Losing the lease (another instance took it, an
// operator stopped the plugin, or it could not be renewed before it
// expired) stops the process at once. The lease is released once the
// process is gone. asked is when the lease was asked for. It reports
// whether the plugin was removed.
func (s *supervisor) hold(ctx context.Context, lease Lease, asked time.Time) (removed bool) {
	s.set(func(s *supervisor) { s.holder = lease.Holder })
	s.log.Info("lease acquired", "holder", lease.Holder)
	hctx, lose := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		s.keep(hctx, lose, lease, asked)
	}()
	removed = s.supervise(hctx)
	lose(nil)
	<-kept
	if cause := context.Cause(hctx); ctx.Err() == nil && !removed && cause != nil && !errors.Is(cause, context.Canceled) {
		if errors.Is(cause, errLeaseStopped) {
			s.log.Info("plugin stopped by an operator")
		} else {
			s.leaseTrouble("plugin stopped: its lease is lost", cause)
		}
	}
	s.set(func(s *supervisor) { s.state, s.pid, s.holder = StateStandby, 0, "" })
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.m.cfg.Leases.Release(rctx, s.name); err != nil {
		s.log.Warn("could not release the lease; it expires by itself", "error", err)
	}
	return removed
}

// keep renews the lease every renewInterval (or at once when poked) until
// ctx is done; it ends ctx with the reason the lease was lost. It turns
// a changed Restarts or Starts into a restart or start of the plugin.
// acquired is when the lease was asked for: it lasts a TTL from then at
// least. A holder that cannot renew gives up a fifth of the TTL before
// that (on this host's clock), so its process is gone before another
// instance can take the lease.
func (s *supervisor) keep(ctx context.Context, lose context.CancelCauseFunc, known Lease, acquired time.Time) {
	ttl := s.m.cfg.LeaseTTL
	keepFor := ttl - ttl/5
	deadline := acquired.Add(keepFor)
	t := time.NewTimer(s.m.renewInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.poke:
		}
		sent := time.Now()
		if !sent.Before(deadline) {
			lose(fmt.Errorf("lease lost: not renewed within %s", keepFor))
			return
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		l, err := s.m.cfg.Leases.Acquire(rctx, s.name, ttl)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !time.Now().Before(deadline):
			lose(fmt.Errorf("lease lost: not renewed within %s: %w", keepFor, err))
			return
		case err != nil:
			s.log.Warn("lease renewal failed; trying again", "error", err, "gives_up_at", deadline)
			t.Reset(min(s.m.renewInterval()/2, time.Until(deadline)))
			continue
		case !l.Held && l.Stopped:
			lose(errLeaseStopped)
			return
		case !l.Held:
			lose(fmt.Errorf("lease lost: held by %s", l.Holder))
			return
		}
		deadline = sent.Add(keepFor)
		switch {
		case l.Restarts != known.Restarts:
			s.log.Info("restart requested by an operator")
			go s.send(ctx, cmdRestart)
		case l.Starts != known.Starts:
			go s.send(ctx, cmdStart)
		}
		known = l
		t.Reset(s.m.renewInterval())
	}
}

// leaseTrouble records err as the plugin's last error and logs it with
// msg, once while the same error repeats (an unreachable database is
// asked about every standbyInterval).
func (s *supervisor) leaseTrouble(msg string, err error) {
	s.mu.Lock()
	repeated := s.lastErr == err.Error()
	s.lastErr, s.lastErrAt = err.Error(), time.Now().UTC()
	s.mu.Unlock()
	if !repeated {
		s.log.Warn(msg, "error", err)
	}
}

// pokeNow makes the supervisor look at its lease at once.
func (s *supervisor) pokeNow() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// leaseCommand records an operator's request in the lease, for every
// instance, then has this instance look at the lease at once.
func (m *Manager) leaseCommand(ctx context.Context, name string, f func(context.Context, string) error) error {
	s, err := m.supervisor(name)
	if err != nil {
		return err
	}
	if err := f(ctx, name); err != nil {
		return fmt.Errorf("lease of %s: %w", name, err)
	}
	s.pokeNow()
	return nil
}
