// Package idempotency gives the intake endpoints (POST /data, POST
// /data/batch, POST /triggers) the Idempotency-Key request header, as the
// IETF httpapi draft "The Idempotency-Key HTTP Header Field" describes it:
// a request repeated with the same key and the same body within the
// retention window gets the original answer without storing anything
// again; the same key with another body is 422; a request arriving while
// the first with its key is still being handled is 409.
//
// The key is stored with what the request created, in the same
// transaction (see store.IdempotencyKey), so the promise holds across a
// crash and across instances sharing a PostgreSQL database. Within one
// instance a key in flight is known from memory; across instances, from
// the database's lock on it.
package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/internal/poll"
	"github.com/routinglayer/routing/host/store"
)

// Header is the request header naming the key.
const Header = "Idempotency-Key"

// ReplayedHeader is set to "true" on an answer repeated for a key.
const ReplayedHeader = "Idempotent-Replayed"

// MaxKeyLength bounds a key, in bytes.
const MaxKeyLength = 255

// Keys checks and remembers the keys of one service's requests.
type Keys struct {
	store *store.Store
	ttl   time.Duration
	log   hclog.Logger

	mu       sync.Mutex
	inflight map[string]struct{} // scope + "\x00" + key
}

// New returns the keys of requests stored in st, kept for ttl after they
// were stored.
func New(st *store.Store, ttl time.Duration, log hclog.Logger) *Keys {
	return &Keys{store: st, ttl: ttl, log: log.Named("idempotency"), inflight: map[string]struct{}{}}
}

// TTL is how long a key is kept.
func (k *Keys) TTL() time.Duration { return k.ttl }

// Parse reads the Idempotency-Key header: "" when the request has none.
// The value is the draft's structured-field string ("abc", with \" and
// \\ escapes) or the bare key (abc); either way the key is 1-255 visible
// ASCII characters (0x21-0x7E). Anything else, or the header sent twice,
// is a 400 *httpapi.Error naming the header.
func Parse(h http.Header) (string, error) {
	values := h.Values(Header)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", httpapi.Errorf(http.StatusBadRequest, "%s: sent %d times; send it once", Header, len(values))
	}
	v := values[0]
	key := v
	if len(v) > 0 && v[0] == '"' {
		var ok bool
		if key, ok = unquote(v); !ok {
			return "", httpapi.Errorf(http.StatusBadRequest, "%s: %q is not a well-formed quoted string: want \"<key>\" with \\\" and \\\\ as the only escapes, or the key bare", Header, v)
		}
	}
	if len(key) == 0 || len(key) > MaxKeyLength {
		return "", httpapi.Errorf(http.StatusBadRequest, "%s: the key has %d characters; want 1-%d visible ASCII characters, e.g. a random UUID", Header, len(key), MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return "", httpapi.Errorf(http.StatusBadRequest, "%s: character %d (byte 0x%02x) is not visible ASCII; want 1-%d visible ASCII characters (0x21-0x7E), e.g. a random UUID", Header, i+1, c, MaxKeyLength)
		}
	}
	return key, nil
}

// unquote undoes an RFC 8941 string: "..." with \" and \\ escapes.
func unquote(v string) (string, bool) {
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	out := make([]byte, 0, len(inner))
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\':
			i++
			if i == len(inner) || (inner[i] != '"' && inner[i] != '\\') {
				return "", false
			}
			out = append(out, inner[i])
		case c == '"':
			return "", false
		default:
			out = append(out, c)
		}
	}
	return string(out), true
}

// Claim is a request holding its key while it is handled. A nil *Claim
// (a request without a key) is valid: Key is nil and Done does nothing.
type Claim struct {
	keys *Keys
	id   string
	key  store.IdempotencyKey
}

// Begin starts handling a request to the endpoint scope with body (as
// read, decompressed). Without a key it returns nil, nil, nil. With one:
//   - a 400 *httpapi.Error for a malformed key (see Parse);
//   - a 409 while a request with the key is in flight on this instance;
//   - the stored record when the key was used with the same body (answer
//     it with the original result, see Replay);
//   - a 422 when it was used with another body;
//   - else the claim, to pass to the store's keyed write (Key) and end
//     with Done once answered.
func (k *Keys) Begin(r *http.Request, scope string, body []byte) (*Claim, *store.KeyRecord, error) {
	key, err := Parse(r.Header)
	if err != nil || key == "" {
		return nil, nil, err
	}
	hash := sha256.Sum256(body)
	c := &Claim{keys: k, id: scope + "\x00" + key, key: store.IdempotencyKey{Scope: scope, Key: key, Hash: hash[:], TTL: k.ttl}}
	k.mu.Lock()
	_, busy := k.inflight[c.id]
	if !busy {
		k.inflight[c.id] = struct{}{}
	}
	k.mu.Unlock()
	if busy {
		return nil, nil, inFlight(key)
	}
	rec, err := k.store.LookupKey(r.Context(), scope, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, nil, nil
	case err != nil:
		c.Done()
		return nil, nil, err
	}
	c.Done()
	if !rec.SameBody(c.key.Hash) {
		return nil, nil, k.reused(rec)
	}
	return nil, &rec, nil
}

// Key is the key for the store's keyed write; nil without a key.
func (c *Claim) Key() *store.IdempotencyKey {
	if c == nil {
		return nil
	}
	return &c.key
}

// Done releases the key once the request is answered.
func (c *Claim) Done() {
	if c == nil {
		return
	}
	c.keys.mu.Lock()
	delete(c.keys.inflight, c.id)
	c.keys.mu.Unlock()
}

// Resolve reads the error of the store's keyed write: when another
// request stored the key meanwhile (another instance) with the same
// body, it returns the record to replay; with another body, a 422; while
// another instance's request holds it, a 409. Any other err is returned
// as it is.
func (c *Claim) Resolve(err error) (*store.KeyRecord, error) {
	var used *store.KeyUsedError
	switch {
	case c == nil || err == nil:
		return nil, err
	case errors.As(err, &used):
		if !used.Record.SameBody(c.key.Hash) {
			return nil, c.keys.reused(used.Record)
		}
		return &used.Record, nil
	case errors.Is(err, store.ErrKeyInFlight):
		return nil, inFlight(c.key.Key)
	}
	return nil, err
}

// Replayed marks w's answer as a repeated one.
func Replayed(w http.ResponseWriter) { w.Header().Set(ReplayedHeader, "true") }

func inFlight(key string) error {
	return &httpapi.Error{Status: http.StatusConflict, RetryAfter: 1, Err: fmt.Errorf(
		"a request with %s %q is still being handled: retry once it has been answered, to get its answer", Header, key)}
}

func (k *Keys) reused(rec store.KeyRecord) error {
	return httpapi.Errorf(http.StatusUnprocessableEntity,
		"%s %q was used on %s at %s for a request with a different body; a key names one request for IDEMPOTENCY_TTL (%s) after it was stored: send a new request under a new key",
		Header, rec.Key, rec.Scope, rec.CreatedAt.Format(time.RFC3339), k.ttl)
}

// purgeInterval is how often expired keys are deleted: half the TTL,
// within 1 s and 10 min.
func (k *Keys) purgeInterval() time.Duration {
	return min(max(k.ttl/2, time.Second), 10*time.Minute)
}

// Run deletes expired keys until ctx ends: at once, then every half TTL
// (at least every 10 min). Expired keys are ignored before they are
// purged, so a late purge only keeps rows longer.
func (k *Keys) Run(ctx context.Context) {
	purge := func() bool {
		n, err := k.store.PurgeKeys(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			k.log.Warn("cannot purge expired idempotency keys; trying again later", "error", err)
		case n > 0:
			k.log.Debug("purged expired idempotency keys", "keys", n)
		}
		return true
	}
	purge()
	poll.Every(ctx, k.purgeInterval(), purge)
}

// RefID is a record's ref as a delivery id.
func RefID(rec *store.KeyRecord) (int64, error) {
	id, err := strconv.ParseInt(rec.Ref, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("idempotency key %q: ref %q is not a delivery id", rec.Key, rec.Ref)
	}
	return id, nil
}
