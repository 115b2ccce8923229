package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// IdempotencyKey is a client's Idempotency-Key on a request that creates
// something: a write given one stores the key with what it created, in
// its own transaction, or finds the key used already.
type IdempotencyKey struct {
	// Scope is the endpoint the key belongs to ("/data/batch"): one key
	// may be used once per scope.
	Scope string
	// Key is the header's value, 1-255 visible ASCII characters.
	Key string
	// Hash is the SHA-256 of the request body.
	Hash []byte
	// TTL is how long the key is kept once stored.
	TTL time.Duration
}

// KeyRecord is a stored key: the request it came with (by its body's
// hash) and the answer it got.
type KeyRecord struct {
	Scope, Key string
	Hash       []byte
	// Status is the original answer's HTTP status (202, 201, 200).
	Status int
	// Ref is what the request created: a delivery id in decimal, a
	// trigger uuid.
	Ref                  string
	CreatedAt, ExpiresAt time.Time
}

// SameBody reports whether the record came with a body of hash h.
func (r KeyRecord) SameBody(h []byte) bool { return bytes.Equal(r.Hash, h) }

// ErrKeyInFlight is returned by a keyed write while another transaction,
// on this or another instance sharing the database, holds the same key:
// the first request with it is still being stored.
var ErrKeyInFlight = errors.New("idempotency key in use by a request in flight")

// KeyUsedError is returned by a keyed write whose key is stored already
// and unexpired: nothing was written, and Record is the original.
type KeyUsedError struct{ Record KeyRecord }

func (e *KeyUsedError) Error() string {
	return fmt.Sprintf("idempotency key %q of %s already used", e.Record.Key, e.Record.Scope)
}

const keyColumns = "scope, key, body_hash, status, ref, created_at, expires_at"

func scanKey(row scanner) (KeyRecord, error) {
	var (
		r                KeyRecord
		created, expires int64
	)
	if err := row.Scan(&r.Scope, &r.Key, &r.Hash, &r.Status, &r.Ref, &created, &expires); err != nil {
		return KeyRecord{}, err
	}
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	return r, nil
}

// LookupKey returns the unexpired record of key in scope, or ErrNotFound.
func (s *Store) LookupKey(ctx context.Context, scope, key string) (KeyRecord, error) {
	r, err := scanKey(s.r.QueryRowContext(ctx, s.q("SELECT "+keyColumns+" FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at > ?"),
		scope, key, micros(time.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return KeyRecord{}, fmt.Errorf("idempotency key %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return KeyRecord{}, fmt.Errorf("look up idempotency key: %w", err)
	}
	return r, nil
}

// keyLockClass is the first of the two int4 keys of the PostgreSQL
// advisory locks that hold an idempotency key for its transaction (the
// two-key space is apart from the bigint one the migrations' lock uses).
const keyLockClass = 0x1de7

// claimKey prepares the keyed write in tx: it takes the key for the
// transaction (PostgreSQL: an advisory lock, so a second instance's
// request with the key gets ErrKeyInFlight rather than waiting), returns
// a *KeyUsedError when the key is stored and unexpired, and removes an
// expired row of it. With SQLite, whose writes are serial, the read
// suffices.
func (s *Store) claimKey(ctx context.Context, tx *sql.Tx, k *IdempotencyKey) error {
	if s.dialect == "postgres" {
		h := fnv.New32a()
		h.Write([]byte(k.Scope))
		h.Write([]byte{0})
		h.Write([]byte(k.Key))
		var got bool
		if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock($1, $2)", keyLockClass, int32(h.Sum32())).Scan(&got); err != nil {
			return fmt.Errorf("lock idempotency key: %w", err)
		}
		if !got {
			return ErrKeyInFlight
		}
	}
	r, err := scanKey(s.txQueryRow(ctx, tx, qKeyGet, k.Scope, k.Key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look up idempotency key: %w", err)
	case r.ExpiresAt.After(time.Now()):
		return &KeyUsedError{Record: r}
	}
	if _, err := s.txExec(ctx, tx, qKeyDelete, k.Scope, k.Key); err != nil {
		return fmt.Errorf("replace expired idempotency key: %w", err)
	}
	return nil
}

// recordKey stores k in tx with the answer the write gets.
func (s *Store) recordKey(ctx context.Context, tx *sql.Tx, k *IdempotencyKey, status int, ref string) error {
	now := time.Now()
	_, err := s.txExec(ctx, tx, qKeyInsert, k.Scope, k.Key, k.Hash, status, ref, micros(now), micros(now.Add(k.TTL)))
	if isUniqueViolation(err) {
		// Another transaction stored it since the claim (it cannot with
		// the lock held; kept as the safe answer).
		return ErrKeyInFlight
	}
	if err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	return nil
}

// purgeBatch bounds the rows one purge statement deletes.
const purgeBatch = 1000

// PurgeKeys deletes the keys expired at now, in statements of up to 1000
// rows, and returns how many it deleted.
func (s *Store) PurgeKeys(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.exec(ctx, "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)",
			micros(now), purgeBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("purge idempotency keys: %w", err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}

var (
	qKeyGet    = hot("SELECT " + keyColumns + " FROM idempotency_keys WHERE scope = ? AND key = ?")
	qKeyDelete = hot("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?")
	qKeyInsert = hot("INSERT INTO idempotency_keys (" + keyColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?)")
)
