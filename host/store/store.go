// Package store keeps the routing layer's durable state: protocol triggers
// and their publish outbox, and the plugins' key-value State. It runs on an
// embedded SQLite database by default (pure Go, WAL, synced commits) and on
// PostgreSQL when a database URL is given; both share one schema, migrated
// on open from embedded SQL files.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // also the database/sql driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors of the store.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrTooLarge = errors.New("too large")
)

//go:embed migrations
var migrations embed.FS

// Config chooses and locates the database.
type Config struct {
	// DataDir holds the SQLite database file, routing.db.
	DataDir string
	// DatabaseURL, when set (postgres://...), selects PostgreSQL.
	DatabaseURL string
	// User names the kind of service that uses a SQLite database
	// ("control-tower"): one service of a kind at a time may open it (see
	// lockDatabase), while services of different kinds, whose claims are
	// of different tables, may share it.
	User string
}

// Store is the database. It is safe for concurrent use.
type Store struct {
	// w takes writes; r serves reads. With SQLite, w is one connection
	// whose transactions start IMMEDIATE, so writers queue instead of
	// failing with SQLITE_BUSY, while readers run beside them (WAL). With
	// PostgreSQL both are the same pool.
	w, r    *sql.DB
	dialect string
	log     hclog.Logger
	// group runs SQLite's writes (nil with PostgreSQL, whose concurrent
	// transactions commit in parallel).
	group *committer
	// prepared holds SQLite's hot statements, prepared once on the write
	// connection: parsing one costs more than running it. (pgx caches
	// PostgreSQL's statements itself.)
	prepared map[string]*sql.Stmt
	// readPrepared holds SQLite's hot reads, prepared on the read pool.
	readPrepared map[string]*sql.Stmt
	// local holds SQLite's task claims and both dialects' settled tasks.
	local localClaims
	// outbox holds SQLite's outbox claims.
	outbox outboxClaims
	// stopCheckpoints ends SQLite's checkpointer (see checkpoints).
	stopCheckpoints func()
	// lock is SQLite's database lock file, held while the store is open
	// (see lockDatabase).
	lock *os.File
}

// readQueries are the reads prepared once (see hotRead).
var readQueries []string

// hotRead registers a read run often outside write transactions.
func hotRead(query string) string {
	readQueries = append(readQueries, query)
	return query
}

// query runs a read on the read pool, as a prepared statement when it is
// a hot one.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := s.readPrepared[query]; ok {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, s.q(query), args...)
}

// hotQueries are the statements prepared once (see hot).
var hotQueries []string

// hot registers a statement run often inside write transactions.
func hot(query string) string {
	hotQueries = append(hotQueries, query)
	return query
}

// prepare prepares the hot statements on the SQLite write connection.
func (s *Store) prepare(ctx context.Context) error {
	s.prepared = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.prepared[q] = st
	}
	s.readPrepared = make(map[string]*sql.Stmt, len(readQueries))
	for _, q := range readQueries {
		st, err := s.r.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.readPrepared[q] = st
	}
	return nil
}

// txExec, txQuery and txQueryRow run query in tx, as a prepared statement
// when it is a hot one.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := s.prepared[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st, ok := s.prepared[query]; ok {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, s.q(query), args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st, ok := s.prepared[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.q(query), args...)
}

// Open opens (creating if needed) and migrates the database.
func Open(ctx context.Context, cfg Config, log hclog.Logger) (*Store, error) {
	s := &Store{log: log.Named("store"), local: localClaims{m: map[int64]localClaim{}}, outbox: outboxClaims{m: map[int64]outboxClaim{}}}
	var err error
	if cfg.DatabaseURL != "" {
		s.dialect = "postgres"
		s.w, err = sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		s.w.SetMaxOpenConns(20)
		s.w.SetMaxIdleConns(20)
		s.r = s.w
	} else {
		s.dialect = "sqlite"
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path := filepath.Join(cfg.DataDir, "routing.db")
		if s.lock, err = lockDatabase(path, cfg.User); err != nil {
			return nil, err
		}
		pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
		// The writer does not checkpoint: the checkpointer does, beside it.
		if s.w, err = sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate"); err != nil {
			s.lock.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		if s.r, err = sql.Open("sqlite", "file:"+path+"?"+pragmas); err != nil {
			s.w.Close()
			s.lock.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.r.SetMaxOpenConns(4)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.dialect == "sqlite" {
		if err := s.prepare(ctx); err != nil {
			s.Close()
			return nil, err
		}
		if s.group, err = newCommitter(ctx, s.w); err != nil {
			s.Close()
			return nil, err
		}
		s.group.insertTriggers = s.insertTriggersTogether
		s.stopCheckpoints = s.checkpoints()
	}
	return s, nil
}

// checkpointEvery is how often the checkpointer copies the WAL's committed
// pages into the database file.
const checkpointEvery = 100 * time.Millisecond

// checkpoints runs SQLite's checkpoints on a read connection every
// checkpointEvery until the returned func is called (which waits for it).
// A checkpoint copies the WAL's pages into the database file and syncs
// it; run by the writer on the commit that fills 1000 pages, as SQLite
// does by default, it made that commit, and every write waiting behind
// it, wait for a few megabytes of copying and an fsync. A passive
// checkpoint runs beside the writer and readers, blocking neither;
// commits are as durable as before (the WAL is synced on each commit).
func (s *Store) checkpoints() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := s.r.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				s.log.Warn("WAL checkpoint failed; retrying", "error", err)
			case err == nil && failing:
				s.log.Info("WAL checkpoints work again")
			}
			failing = err != nil && ctx.Err() == nil
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == "postgres" {
		dialect = goose.DialectPostgres
		// Instances starting together wait for each other's migration:
		// ask for the lock every second (goose's default is every 5 s),
		// for up to 5 minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrations lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.w, dir, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s database: %w", s.dialect, err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "version", r.Source.Version, "file", filepath.Base(r.Source.Path))
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close()) // releases the lock
	}
	return err
}

// lockDatabase takes the lock that makes one process the only user of
// kind user of the SQLite database at path: its claims of outbox entries
// or spool tasks are held in that process's memory, so a second
// control-tower (or data-gateway) on the same file could publish (or
// push) what the first has claimed. The lock is an exclusive flock of
// <path>.<user>.lock, released when the file is closed (by Close, or by
// the kernel when the process dies, so a killed service's lock never
// outlives it).
func lockDatabase(path, user string) (*os.File, error) {
	name := path + ".lock"
	if user != "" {
		name = path + "." + user + ".lock"
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("DATA_DIR=%q: another running %s uses its SQLite database (%s is locked): give each instance its own DATA_DIR, and use PostgreSQL (DATABASE_URL) for instances that share their work",
				filepath.Dir(path), cmp.Or(user, "service"), filepath.Base(name))
		}
		return nil, fmt.Errorf("lock sqlite database: %w", err)
	}
	return f, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("%s database: %w", s.dialect, err)
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// q rewrites a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// placeholders is n comma-separated ? placeholders, for an IN list.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// inTx runs f in one write transaction; with SQLite the transaction may be
// shared with concurrent writes (group commit), f's effects being rolled
// back alone when it fails. f must not call inTx.
func (s *Store) inTx(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	if s.group != nil {
		return s.group.do(ctx, f)
	}
	stats.Add("transactions", 1)
	stats.Add("writes", 1)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// exec runs one write statement through inTx and returns the rows it
// affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// isUniqueViolation reports whether err is a unique or primary key
// constraint violation, by the driver's error code: PostgreSQL's
// unique_violation (SQLSTATE 23505), SQLite's extended result codes
// SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY (the driver
// turns extended codes on).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
