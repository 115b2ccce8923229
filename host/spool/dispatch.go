package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/routinglayer/routing/host/internal/retry"
	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/host/tracing"
	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// claimGap is the least time between a claim of a pusher's pool that
// found nothing and the next.
const claimGap = 3 * time.Millisecond

// duePoll is how often a pusher's pool looks for due tasks without a wake-up
// (retries come due, other instances' leases run out).
const duePoll = 250 * time.Millisecond

// Attach starts a pusher process and delivers its tasks until ctx is done
// or the process dies. It is the plugin manager's AttachFunc for pushers.
func (sp *Spool) Attach(ctx context.Context, p *pluginmgr.Plugin) error {
	pc, ok := p.Client.(pluginhost.PusherClient)
	if !ok {
		return fmt.Errorf("plugin %s is not a pusher", p.Name)
	}
	if err := pc.Start(ctx, sp.store.PluginState(p.Name)); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return sp.deliver(ctx, p.Name, pc)
}

type outcome struct {
	exited bool // the plugin process is gone
	hung   bool // the plugin did not answer within PushTimeout
}

// pool is what the pushes of one pusher's worker pool share: the
// outcomes being recorded, in order per uuid.
type pool struct {
	records sync.WaitGroup
	mu      sync.Mutex
	last    map[string]chan struct{} // per uuid: closed once its last outcome is recorded
}

// recordInOrder runs record in the background after the uuid's previous
// outcome is recorded, so outcomes commit in the order of the pushes.
func (p *pool) recordInOrder(uuid string, record func()) {
	p.mu.Lock()
	if p.last == nil {
		p.last = map[string]chan struct{}{}
	}
	prev, mine := p.last[uuid], make(chan struct{})
	p.last[uuid] = mine
	p.mu.Unlock()
	p.records.Go(func() {
		if prev != nil {
			<-prev
		}
		record()
		close(mine)
		p.mu.Lock()
		if p.last[uuid] == mine {
			delete(p.last, uuid)
		}
		p.mu.Unlock()
	})
}

// lease is how long a claim holds its tasks: a batch waits in the queue
// for at most one push per worker before its own.
func (sp *Spool) lease() time.Duration { return 2*sp.cfg.PushTimeout + 10*time.Second }

// deliver runs one pusher's worker pool: it claims due tasks (at most one
// batch per uuid at a time, so each uuid's rows arrive in order) and
// pushes up to Concurrency batches in parallel. Claims are taken ahead, up
// to Concurrency batches beyond those being pushed, in one transaction,
// and kept in memory until a worker is free: a push does not wait for a
// claim of its own. A pushed batch's outcome is recorded while the worker
// goes on with the next batch: the store settles the batch's tasks at
// once (SettleTasks), so the uuid's next batch can be claimed and pushed
// before the outcome is committed. Outcomes commit in the order of their
// pushes; after a crash, what was pushed but not recorded is pushed again,
// in order (at least once).
func (sp *Spool) deliver(ctx context.Context, pusher string, pc pluginhost.PusherClient) error {
	log := sp.log.With("pusher", pusher)
	kick := sp.kickChan(pusher)
	done := make(chan outcome, sp.cfg.Concurrency)
	var (
		inFlight  int
		queue     [][]store.ClaimedTask // claimed, waiting for a worker
		lastEmpty time.Time             // of the last claim that found nothing
		p         pool
	)
	defer func() {
		for ; inFlight > 0; inFlight-- {
			<-done
		}
		p.records.Wait()
		var left []store.ClaimedTask
		for _, b := range queue {
			left = append(left, b...)
		}
		if len(left) > 0 {
			sp.releaseAll(context.WithoutCancel(ctx), left, 0)
		}
	}()
	// Runs before the wait above: pushes still in flight when the loop
	// gives up on the process end now and are released uncounted.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		if ctx.Err() == nil {
			if free := sp.cfg.Concurrency - inFlight; free > 0 && len(queue) < free {
				// After a claim that found nothing, the next waits a little:
				// requests arriving together are claimed, and pushed,
				// together, rather than one read per request.
				if wait := claimGap - time.Since(lastEmpty); wait > 0 {
					time.Sleep(wait)
				}
				want := free + sp.cfg.Concurrency - len(queue)
				batches, err := sp.store.ClaimTasks(ctx, pusher, sp.owner, want, sp.batchRows(pusher), int64(sp.batchBytes()), sp.lease())
				if err != nil && ctx.Err() == nil {
					log.Warn("cannot claim tasks", "error", err)
				}
				if len(batches) == 0 {
					lastEmpty = time.Now()
				}
				queue = append(queue, batches...)
			}
			for ; inFlight < sp.cfg.Concurrency && len(queue) > 0; inFlight++ {
				b := queue[0]
				queue = queue[1:]
				go func() { done <- sp.push(ctx, pc, b, &p) }()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case o := <-done:
			inFlight--
			if o.exited {
				return fmt.Errorf("push: %w", pluginhost.ErrPluginExited)
			}
			if o.hung {
				// A plugin stuck in Push is not left "running": ending the
				// attachment makes its supervisor kill and restart it.
				return fmt.Errorf("push did not answer within %s; restarting the plugin", sp.cfg.PushTimeout)
			}
			continue // a worker is free: take the next batch
		case <-kick:
		case <-time.After(duePoll):
		}
	}
}

// batchRows bounds the rows of a pusher's batch for a uuid: none behind
// the head while the uuid had a failed batch, so that until one push of it
// succeeds its tasks go one at a time, attempts, retries and dead letters
// count per task, and a bad row cannot hold back the rows around it.
func (sp *Spool) batchRows(pusher string) func(uuid string) int {
	return func(uuid string) int {
		if sp.isSingle(pusher, uuid) {
			return 0
		}
		return sp.cfg.MaxBatchRows
	}
}

func (sp *Spool) isSingle(pusher, uuid string) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.single[pusher+"\x00"+uuid]
}

func (sp *Spool) setSingle(pusher, uuid string, on bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if on {
		sp.single[pusher+"\x00"+uuid] = true
	} else {
		delete(sp.single, pusher+"\x00"+uuid)
	}
}

// push delivers a batch (tasks of one uuid, in order) in one Push and
// records its outcome. No Push message passes MaxPushBytes: tasks that
// would take the batch past it are released for a later push, and a
// single task whose rows alone pass it is pushed in consecutive parts, in
// order, and delivered once every part is (a retry pushes every part
// again; a row too large for any push is dead-lettered). A batch of
// several tasks that fails is released whole, uncounted, and its uuid's
// tasks go one at a time until one is delivered; a single task follows
// the retry policy. Bookkeeping outlives a cancelled ctx: a task must end
// claimed by nobody or finished.
//
// A delivered or skipped batch's outcome is recorded in the background
// (see deliver), so that the worker is free at once.
func (sp *Spool) push(ctx context.Context, pc pluginhost.PusherClient, batch []store.ClaimedTask, p *pool) outcome {
	bg := context.WithoutCancel(ctx)
	t := batch[0]
	log := sp.log.With("pusher", t.Pusher, "uuid", t.UUID, "delivery", t.DeliveryID, "attempt", t.Attempts+1)
	if err := sp.store.LoadRows(ctx, batch); err != nil {
		// Claimed but unreadable now: released, to be tried again.
		log.Warn("cannot read the rows to push", "error", err)
		sp.releaseAll(bg, batch, 0)
		return outcome{}
	}
	parts := make([]pluginhost.EncodedRows, len(batch))
	for i, bt := range batch {
		part, err := storedRows(bt.Rows)
		if err != nil {
			sp.record(bg, []store.ClaimedTask{bt}, store.TaskDead, fmt.Sprintf("stored rows unreadable: %v", err))
			sp.releaseAll(bg, batch, bt.ID)
			return outcome{}
		}
		parts[i] = part
	}
	ctx, span := sp.startDelivery(ctx, batch)
	defer span.End()
	var trigger *sdk.StoredTrigger
	if sp.tower != nil {
		var err error
		if trigger, err = sp.tower.resolve(ctx, t.UUID); err != nil {
			log.Warn("trigger unresolved; retrying later", "error", err)
			sp.retry(bg, t, sp.retryDelay(t.Attempts), err.Error(), false)
			sp.releaseAll(bg, batch, t.ID)
			return outcome{}
		}
	}
	req := sdk.PushRequest{UUID: t.UUID, Trigger: trigger, Attempt: t.Attempts + 1}
	room := max(sp.cfg.MaxPushBytes-pluginhost.PushRequestSize(req, nil), 0)
	// Tasks behind the head that do not fit in one message beside the
	// trigger go back to wait for the next push.
	n, size := 1, len(parts[0])
	for n < len(batch) && size+len(parts[n]) <= room {
		size += len(parts[n])
		n++
	}
	if n < len(batch) {
		sp.releaseAll(bg, batch[n:], 0)
		batch, parts = batch[:n], parts[:n]
	}
	count := func(outcome string) { sp.cfg.Metrics.Tasks.WithLabelValues(t.Pusher, outcome).Add(float64(len(batch))) }
	var chunks []pluginhost.EncodedRows
	if len(batch) > 1 {
		chunks = []pluginhost.EncodedRows{concat(parts, size)}
	} else {
		var err error
		if chunks, err = splitRows(parts[0], room); err != nil {
			count("dead")
			log.Warn("rows too large for a push; dead-lettered", "error", err)
			sp.setSingle(t.Pusher, t.UUID, false)
			sp.record(bg, batch, store.TaskDead, err.Error())
			return outcome{}
		}
		if len(chunks) > 1 {
			log.Info("rows too large for one push; pushing them in consecutive parts", "parts", len(chunks), "bytes", len(parts[0]), "limit", sp.cfg.MaxPushBytes)
		}
	}
	note, err := sp.pushParts(ctx, pc, t.Pusher, req, chunks)
	span.SetAttributes(attribute.Int("routing.tasks", len(batch)))
	if err != nil && !errors.Is(err, sdk.ErrSkipped) {
		span.SetStatus(codes.Error, err.Error())
	}
	if len(batch) > 1 && err != nil && !errors.Is(err, sdk.ErrSkipped) {
		sp.releaseAll(bg, batch, 0)
		if errors.Is(err, pluginhost.ErrPluginExited) || ctx.Err() != nil {
			// Not the rows' fault: the next process takes the batch again.
			return outcome{exited: errors.Is(err, pluginhost.ErrPluginExited)}
		}
		// Which row failed is unknown: push them one at a time.
		sp.setSingle(t.Pusher, t.UUID, true)
		log.Info("batch push failed; pushing its tasks one at a time", "tasks", len(batch), "error", err)
		if errors.Is(err, context.DeadlineExceeded) {
			count("timeout")
			return outcome{hung: true}
		}
		count("retried")
		return outcome{}
	}
	switch {
	case err == nil:
		count("delivered")
		for _, c := range chunks {
			sp.cfg.Metrics.RowsDelivered.WithLabelValues(t.Pusher).Add(float64(len(rowSizes(c))))
		}
		sp.setSingle(t.Pusher, t.UUID, false)
		sp.settle(bg, p, batch, store.TaskDelivered, note)
	case errors.Is(err, sdk.ErrSkipped):
		count("skipped")
		sp.setSingle(t.Pusher, t.UUID, false)
		sp.settle(bg, p, batch, store.TaskSkipped, err.Error())
	case errors.Is(err, sdk.ErrPermanent):
		count("dead")
		log.Warn("permanent failure; dead-lettered", "error", err)
		sp.setSingle(t.Pusher, t.UUID, false)
		sp.record(bg, batch, store.TaskDead, err.Error())
	case errors.Is(err, pluginhost.ErrPluginExited), ctx.Err() != nil:
		// Not the rows' fault: the next process takes the task again.
		sp.retry(bg, t, 0, err.Error(), false)
		return outcome{exited: errors.Is(err, pluginhost.ErrPluginExited)}
	case errors.Is(err, context.DeadlineExceeded):
		count("timeout")
		log.Warn("push timed out; the plugin will be restarted", "timeout", sp.cfg.PushTimeout)
		sp.retry(bg, t, sp.retryDelay(t.Attempts), err.Error(), true)
		return outcome{hung: true}
	case t.Attempts+1 >= sp.cfg.MaxAttempts:
		count("dead")
		log.Warn("attempts exhausted; dead-lettered", "error", err)
		sp.setSingle(t.Pusher, t.UUID, false)
		sp.record(bg, batch, store.TaskDead, fmt.Sprintf("%d attempts failed; last: %v", t.Attempts+1, err))
	default:
		count("retried")
		delay := sp.retryDelay(t.Attempts)
		log.Info("push failed; retrying", "error", err, "in", delay)
		sp.retry(bg, t, delay, err.Error(), true)
	}
	return outcome{}
}

// maxLinks bounds the links of a delivery span to the traces of the
// requests it delivers beyond the first.
const maxLinks = 32

// startDelivery starts the span of one batch's delivery: a child of the
// trace of the batch's first request, linked to the others' traces (up
// to maxLinks), so that each request's trace leads to the push that
// delivered its rows.
func (sp *Spool) startDelivery(ctx context.Context, batch []store.ClaimedTask) (context.Context, trace.Span) {
	t := batch[0]
	ctx, span := sp.cfg.Tracer.Start(tracing.Decode(ctx, t.TraceContext), "deliver "+t.Pusher)
	if !span.IsRecording() { // nothing to build while tracing is off
		return ctx, span
	}
	span.SetAttributes(attribute.String("routing.pusher", t.Pusher), attribute.String("routing.uuid", t.UUID),
		attribute.Int64("routing.delivery", t.DeliveryID), attribute.Int("routing.attempt", t.Attempts+1))
	seen := map[trace.TraceID]bool{tracing.SpanContext(t.TraceContext).TraceID(): true}
	for _, bt := range batch[1:] {
		if sc := tracing.SpanContext(bt.TraceContext); sc.IsValid() && !seen[sc.TraceID()] && len(seen) <= maxLinks {
			seen[sc.TraceID()] = true
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, span
}

// concat returns the parts, size bytes in all, as one run of rows: the
// parts themselves when they lie one after the other in memory (as
// LoadRows reads a batch), else a copy.
func concat(parts []pluginhost.EncodedRows, size int) pluginhost.EncodedRows {
	if first := parts[0]; cap(first) >= size {
		run, off := first[:size], 0
		for _, p := range parts {
			if !bytes.Equal(run[off:off+len(p)], p) {
				break
			}
			off += len(p)
		}
		if off == size {
			return run
		}
	}
	rows := make(pluginhost.EncodedRows, 0, size)
	for _, p := range parts {
		rows = append(rows, p...)
	}
	return rows
}

// pushParts pushes the chunks of rows in order, one Push each, and stops
// at the first that fails, returning its error; the notes of the
// delivered pushes are joined.
func (sp *Spool) pushParts(ctx context.Context, pc pluginhost.PusherClient, pusher string, req sdk.PushRequest, chunks []pluginhost.EncodedRows) (string, error) {
	var notes []string
	for i, rows := range chunks {
		pctx, cancel := context.WithTimeout(ctx, sp.cfg.PushTimeout)
		// The plugin's side of the call continues this span (see
		// sdk.TraceContext).
		pctx, span := sp.cfg.Tracer.Start(pctx, "push "+pusher, trace.WithSpanKind(trace.SpanKindClient))
		if span.IsRecording() {
			span.SetAttributes(attribute.String("routing.pusher", pusher), attribute.String("routing.uuid", req.UUID),
				attribute.Int("routing.attempt", req.Attempt), attribute.Int("routing.part", i+1), attribute.Int("routing.parts", len(chunks)),
				attribute.Int("routing.rows", len(rowSizes(rows))))
		}
		started := time.Now()
		err := pc.Push(pctx, req, rows)
		tracing.End(span, err, sdk.ErrDelivered, sdk.ErrSkipped)
		cancel()
		sp.cfg.Metrics.PushDuration.WithLabelValues(pusher).Observe(time.Since(started).Seconds())
		if errors.Is(err, sdk.ErrDelivered) {
			notes, err = append(notes, err.Error()), nil
		}
		if err != nil {
			return strings.Join(notes, "; "), err
		}
	}
	return strings.Join(notes, "; "), nil
}

// splitRows cuts rows, at row boundaries and in order, into the fewest
// consecutive parts of at most room bytes each: usually one. It fails
// when a single row is larger than room.
func splitRows(rows pluginhost.EncodedRows, room int) ([]pluginhost.EncodedRows, error) {
	if len(rows) <= room {
		return []pluginhost.EncodedRows{rows}, nil
	}
	sizes, err := rows.RowSizes()
	if err != nil {
		return nil, err
	}
	var parts []pluginhost.EncodedRows
	start, end := 0, 0
	for i, n := range sizes {
		if n > room {
			return nil, fmt.Errorf("row %d of the request is %d bytes in the plugin protocol; a push carries at most %d bytes of rows beside its trigger", i, n, room)
		}
		if end+n-start > room {
			parts = append(parts, rows[start:end])
			start = end
		}
		end += n
	}
	return append(parts, rows[start:end]), nil
}

// rowSizes is the size of each encoded row, or none when the encoding
// cannot be read.
func rowSizes(rows pluginhost.EncodedRows) []int {
	sizes, _ := rows.RowSizes()
	return sizes
}

// batchBytes bounds the stored rows of the tasks one push takes together:
// the message limit less a sixteenth kept for the trigger and framing.
func (sp *Spool) batchBytes() int {
	return sp.cfg.MaxPushBytes - sp.cfg.MaxPushBytes/16
}

// storedRows returns a delivery's rows as stored, in the plugin protocol's
// encoding, once their framing is checked.
func storedRows(b []byte) (pluginhost.EncodedRows, error) {
	if _, err := pluginhost.EncodedRows(b).Len(); err != nil {
		return nil, err
	}
	return b, nil
}

// releaseAll gives back the claims of a batch's tasks, but the one with id
// except, uncounted and due now.
func (sp *Spool) releaseAll(ctx context.Context, batch []store.ClaimedTask, except int64) {
	var ids []int64
	for _, t := range batch {
		if t.ID != except {
			ids = append(ids, t.ID)
		}
	}
	if err := sp.store.ReleaseTasks(ctx, ids, sp.owner); err != nil {
		sp.log.Warn("cannot release tasks", "tasks", ids, "error", err)
	}
}

func (sp *Spool) record(ctx context.Context, batch []store.ClaimedTask, state store.TaskState, msg string) {
	ids := make([]int64, len(batch))
	for i, t := range batch {
		ids[i] = t.ID
	}
	freed, err := sp.store.FinishTasks(ctx, ids, sp.owner, state, msg)
	if err != nil {
		// The lease ran out or the store failed: the tasks stay pending and
		// are pushed again (at least once).
		sp.log.Warn("cannot record task outcome", "tasks", ids, "state", state, "error", err)
	} else {
		sp.ledger.settled(batch[0].Pusher, len(ids), freed)
	}
	sp.kick(batch[0].Pusher) // the uuid's next task may be due
}

// settle records a batch's final outcome in the background, in order
// with its uuid's earlier outcomes; its tasks count as finished for
// claims from now on.
func (sp *Spool) settle(ctx context.Context, p *pool, batch []store.ClaimedTask, state store.TaskState, msg string) {
	ids := make([]int64, len(batch))
	for i, t := range batch {
		ids[i] = t.ID
	}
	sp.store.SettleTasks(sp.owner, ids)
	p.recordInOrder(batch[0].UUID, func() { sp.record(ctx, batch, state, msg) })
}

func (sp *Spool) retry(ctx context.Context, t store.ClaimedTask, delay time.Duration, msg string, counted bool) {
	if err := sp.store.RetryTask(ctx, t.ID, sp.owner, delay, msg, counted); err != nil {
		sp.log.Warn("cannot release task", "task", t.ID, "error", err)
	}
}

// retryDelay is the delay before a failed task's next attempt, after
// attempts failed ones: exponential from RetryMin, capped at RetryMax, with
// up to 25% jitter.
func (sp *Spool) retryDelay(attempts int) time.Duration {
	return retry.Policy{Min: sp.cfg.RetryMin, Max: sp.cfg.RetryMax, Jitter: 0.25}.Delay(attempts)
}
