package store

import (
	"context"
	"database/sql"
	"errors"
	"expvar"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned for writes after the store was closed.
var ErrClosed = errors.New("store closed")

// stats counts this process's write transactions and the writes they
// held, over every store it opened; the debug server (DEBUG_ADDR) serves
// them as the expvar "store": {"transactions": n, "writes": n, "busy_us":
// n}, busy_us being the microseconds SQLite's single writer spent in
// transactions (commits included).
var stats = expvar.NewMap("store")

// maxGroup bounds the writes that share one transaction.
const maxGroup = 256

// committer is SQLite's group commit. SQLite has one writer and pays one
// fsync per commit, so concurrent writers queue behind each other's
// fsyncs. The committer runs the writes that are waiting when a
// transaction starts in that one transaction, each inside its own
// savepoint (a write that fails is rolled back alone, with its own error),
// and commits them with one fsync. A caller returns only after the commit
// that holds its write, so durability is what it was with one transaction
// per write.
//
// A write runs with its caller's context values but not its cancellation:
// the SQLite driver interrupts a statement whose context ends, and an
// interrupted write inside a transaction rolls back the whole
// transaction, the other callers' writes and the savepoints with it. A
// caller whose context ends before its write starts gets the context's
// error; once started, its write runs to its end.
type committer struct {
	db   *sql.DB
	ops  chan *groupOp
	quit chan struct{}
	done chan struct{}

	// savepoint, rollbackTo and release are the savepoint statements,
	// prepared once on the write connection: parsing one costs more than
	// running it, and every write of a shared transaction runs two.
	savepoint, rollbackTo, release *sql.Stmt

	// insertTriggers, when set, inserts the new triggers of a transaction's
	// writes together (see groupOp.trigger).
	insertTriggers func(tx *sql.Tx, ts []*newTrigger) error

	mu     sync.RWMutex
	closed bool

	// transactions and writes count what the committer ran.
	transactions, writes atomic.Int64
}

type groupOp struct {
	ctx  context.Context
	f    func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
	// trigger, when set, is a new trigger that f stores: the committer
	// inserts the new triggers of a transaction's writes, and their outbox
	// entries, in one statement each, and calls f only for those it could
	// not insert so (a uuid or key stored already, or a failure), which f
	// stores, or finds stored, the usual way.
	trigger *newTrigger
}

// newTrigger is a trigger to insert with others (see groupOp.trigger).
type newTrigger struct {
	t   Trigger // status, creation time set
	key any     // its idempotency key, nil for none
	// inserted is set once it is inserted; t.Seq is then its seq.
	inserted bool
}

// call runs the write; a panic in it fails this write alone rather than
// the goroutine every write waits on.
func (op *groupOp) call(tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return op.f(context.WithoutCancel(op.ctx), tx)
}

func newCommitter(ctx context.Context, db *sql.DB) (*committer, error) {
	c := &committer{db: db, ops: make(chan *groupOp, maxGroup), quit: make(chan struct{}), done: make(chan struct{})}
	for _, p := range []struct {
		st    **sql.Stmt
		query string
	}{{&c.savepoint, "SAVEPOINT grp"}, {&c.rollbackTo, "ROLLBACK TO grp"}, {&c.release, "RELEASE grp"}} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.st = st
	}
	go c.run()
	return c, nil
}

// runStmt runs one of the savepoint statements in tx.
func runStmt(tx *sql.Tx, st *sql.Stmt) error {
	_, err := tx.Stmt(st).Exec()
	return err
}

// do runs f in a write transaction, possibly shared with other writes, and
// returns once that transaction committed or f's savepoint was rolled
// back.
func (c *committer) do(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	return c.doOp(&groupOp{ctx: ctx, f: f, done: make(chan struct{})})
}

// doTrigger is do for a write that stores the new trigger t (see
// groupOp.trigger); f runs unless t was inserted with others.
func (c *committer) doTrigger(ctx context.Context, t *newTrigger, f func(ctx context.Context, tx *sql.Tx) error) error {
	return c.doOp(&groupOp{ctx: ctx, f: f, done: make(chan struct{}), trigger: t})
}

func (c *committer) doOp(op *groupOp) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.ops <- op
	c.mu.RUnlock()
	<-op.done
	return op.err
}

// close stops taking writes, fails those still queued, and waits for the
// transaction in progress.
func (c *committer) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		close(c.quit)
	}
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		select {
		case op := <-c.ops:
			batch := []*groupOp{op}
		more:
			for len(batch) < maxGroup {
				select {
				case op := <-c.ops:
					batch = append(batch, op)
				default:
					break more
				}
			}
			c.commit(batch)
		case <-c.quit:
			for {
				select {
				case op := <-c.ops:
					op.err = ErrClosed
					close(op.done)
				default:
					return
				}
			}
		}
	}
}

func (c *committer) commit(batch []*groupOp) {
	defer func() {
		for _, op := range batch {
			close(op.done)
		}
	}()
	fail := func(err error) {
		for _, op := range batch {
			if op.err == nil {
				op.err = err
			}
		}
	}
	c.transactions.Add(1)
	c.writes.Add(int64(len(batch)))
	stats.Add("transactions", 1)
	stats.Add("writes", int64(len(batch)))
	started := time.Now()
	defer func() { stats.Add("busy_us", time.Since(started).Microseconds()) }()
	tx, err := c.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	ok := 0
	if err := c.insertTogether(tx, batch); err != nil {
		_ = tx.Rollback()
		fail(err)
		return
	}
	for _, op := range batch {
		if op.trigger != nil && op.trigger.inserted {
			// Its write started, with the others': it ends with them.
			ok++
			continue
		}
		if op.err = op.ctx.Err(); op.err != nil {
			continue
		}
		if len(batch) == 1 {
			if op.err = op.call(tx); op.err == nil {
				ok++
			}
			continue
		}
		if err := runStmt(tx, c.savepoint); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		if op.err = op.call(tx); op.err != nil {
			if err := runStmt(tx, c.rollbackTo); err != nil {
				_ = tx.Rollback()
				fail(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		} else {
			ok++
		}
		if err := runStmt(tx, c.release); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if ok == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
	}
}

// insertTogether inserts the new triggers of batch's writes together, in a
// savepoint: if that fails they are all left to their writes. Its error is
// the savepoint's, which ends the transaction.
func (c *committer) insertTogether(tx *sql.Tx, batch []*groupOp) error {
	if c.insertTriggers == nil {
		return nil
	}
	var ts []*newTrigger
	for _, op := range batch {
		if op.trigger != nil && op.ctx.Err() == nil {
			ts = append(ts, op.trigger)
		}
	}
	if len(ts) < 2 {
		return nil
	}
	if err := runStmt(tx, c.savepoint); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := c.insertTriggers(tx, ts); err != nil {
		for _, t := range ts {
			t.inserted = false
		}
		if err := runStmt(tx, c.rollbackTo); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if err := runStmt(tx, c.release); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}
