package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

// poll is how often a pusher's pool looks for due tasks without a wake-up
// (retries come due, other instances' leases run out).
const poll = 250 * time.Millisecond

// Attach starts a pusher process and delivers its tasks until ctx is done
// or the process dies. It is the plugin manager's AttachFunc for pushers.
func (g *Gateway) Attach(ctx context.Context, p *pluginmgr.Plugin) error {
	pc, ok := p.Client.(sdk.PusherClient)
	if !ok {
		return fmt.Errorf("plugin %s is not a pusher", p.Name)
	}
	if err := pc.Start(ctx, g.store.PluginState(p.Name)); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return g.deliver(ctx, p.Name, pc)
}

type outcome struct {
	exited bool // the plugin process is gone
	hung   bool // the plugin did not answer within PushTimeout
}

// deliver runs one pusher's worker pool: it claims due tasks (at most one
// per uuid at a time, so each uuid's rows arrive in order) and pushes up
// to Concurrency of them in parallel.
func (g *Gateway) deliver(ctx context.Context, pusher string, pc sdk.PusherClient) error {
	log := g.log.With("pusher", pusher)
	kick := g.kickChan(pusher)
	done := make(chan outcome, g.cfg.Concurrency)
	inFlight := 0
	defer func() {
		for ; inFlight > 0; inFlight-- {
			<-done
		}
	}()
	// Runs before the wait above: pushes still in flight when the loop
	// gives up on the process end now and are released uncounted.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lease := 2*g.cfg.PushTimeout + 10*time.Second
	for {
		if free := g.cfg.Concurrency - inFlight; free > 0 && ctx.Err() == nil {
			tasks, err := g.store.ClaimTasks(ctx, pusher, g.owner, free, lease)
			if err != nil && ctx.Err() == nil {
				log.Warn("cannot claim tasks", "error", err)
			}
			for _, t := range tasks {
				inFlight++
				go func() { done <- g.push(ctx, pc, t) }()
			}
			if len(tasks) == free {
				continue // there may be more
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case o := <-done:
			inFlight--
			if o.exited {
				return fmt.Errorf("push: %w", sdk.ErrPluginExited)
			}
			if o.hung {
				// A plugin stuck in Push is not left "running": ending the
				// attachment makes its supervisor kill and restart it.
				return fmt.Errorf("push did not answer within %s; restarting the plugin", g.cfg.PushTimeout)
			}
		case <-kick:
		case <-time.After(poll):
		}
	}
}

// push delivers one task and records its outcome. Bookkeeping outlives a
// cancelled ctx: a task must end claimed by nobody or finished.
func (g *Gateway) push(ctx context.Context, pc sdk.PusherClient, t store.ClaimedTask) outcome {
	bg := context.WithoutCancel(ctx)
	log := g.log.With("pusher", t.Pusher, "uuid", t.UUID, "delivery", t.DeliveryID, "attempt", t.Attempts+1)
	var rows []sdk.Row
	if err := json.Unmarshal(t.Rows, &rows); err != nil {
		g.record(bg, t, store.TaskDead, fmt.Sprintf("stored rows unreadable: %v", err))
		return outcome{}
	}
	var trigger *sdk.StoredTrigger
	if g.tower != nil {
		var err error
		if trigger, err = g.tower.resolve(ctx, t.UUID); err != nil {
			log.Warn("trigger unresolved; retrying later", "error", err)
			g.retry(bg, t, g.retryDelay(t.Attempts), err.Error(), false)
			return outcome{}
		}
	}
	pctx, cancel := context.WithTimeout(ctx, g.cfg.PushTimeout)
	started := time.Now()
	err := pc.Push(pctx, sdk.PushRequest{UUID: t.UUID, Rows: rows, Trigger: trigger, Attempt: t.Attempts + 1})
	cancel()
	g.cfg.Metrics.PushDuration.WithLabelValues(t.Pusher).Observe(time.Since(started).Seconds())
	count := func(outcome string) { g.cfg.Metrics.Tasks.WithLabelValues(t.Pusher, outcome).Inc() }
	switch {
	case err == nil:
		count("delivered")
		g.record(bg, t, store.TaskDelivered, "")
	case errors.Is(err, sdk.ErrSkipped):
		count("skipped")
		g.record(bg, t, store.TaskSkipped, err.Error())
	case errors.Is(err, sdk.ErrPermanent):
		count("dead")
		log.Warn("permanent failure; dead-lettered", "error", err)
		g.record(bg, t, store.TaskDead, err.Error())
	case errors.Is(err, sdk.ErrPluginExited), ctx.Err() != nil:
		// Not the rows' fault: the next process takes the task again.
		g.retry(bg, t, 0, err.Error(), false)
		return outcome{exited: errors.Is(err, sdk.ErrPluginExited)}
	case errors.Is(err, context.DeadlineExceeded):
		count("timeout")
		log.Warn("push timed out; the plugin will be restarted", "timeout", g.cfg.PushTimeout)
		g.retry(bg, t, g.retryDelay(t.Attempts), err.Error(), true)
		return outcome{hung: true}
	case t.Attempts+1 >= g.cfg.MaxAttempts:
		count("dead")
		log.Warn("attempts exhausted; dead-lettered", "error", err)
		g.record(bg, t, store.TaskDead, fmt.Sprintf("%d attempts failed; last: %v", t.Attempts+1, err))
	default:
		count("retried")
		delay := g.retryDelay(t.Attempts)
		log.Info("push failed; retrying", "error", err, "in", delay)
		g.retry(bg, t, delay, err.Error(), true)
	}
	return outcome{}
}

func (g *Gateway) record(ctx context.Context, t store.ClaimedTask, state store.TaskState, msg string) {
	if err := g.store.FinishTask(ctx, t.ID, g.owner, state, msg); err != nil {
		// The lease ran out or the store failed: the task stays pending and
		// is pushed again (at least once).
		g.log.Warn("cannot record task outcome", "task", t.ID, "state", state, "error", err)
	}
	g.kick(t.Pusher) // the uuid's next task may be due
}

func (g *Gateway) retry(ctx context.Context, t store.ClaimedTask, delay time.Duration, msg string, counted bool) {
	if err := g.store.RetryTask(ctx, t.ID, g.owner, delay, msg, counted); err != nil {
		g.log.Warn("cannot release task", "task", t.ID, "error", err)
	}
}

// retryDelay is exponential from RetryMin, capped at RetryMax, with up to
// 25% jitter.
func (g *Gateway) retryDelay(attempts int) time.Duration {
	d := g.cfg.RetryMin
	for i := 0; i < attempts && d < g.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, g.cfg.RetryMax)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}
