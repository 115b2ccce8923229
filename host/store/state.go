package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/routinglayer/routing/sdk"
)

// Limits of plugin State.
const (
	MaxStateKeyBytes   = 512
	MaxStateValueBytes = 1 << 20
)

// KV is one plugin State entry.
type KV struct {
	Key   string
	Value []byte
}

// StateGet returns the value of a plugin's key, or ErrNotFound.
func (s *Store) StateGet(ctx context.Context, plugin, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, s.q("SELECT value FROM plugin_state WHERE plugin = ? AND key = ?"), plugin, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("state %s/%s: %w", plugin, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("state get: %w", err)
	}
	return v, nil
}

// StatePut stores a plugin's key, replacing any previous value.
func (s *Store) StatePut(ctx context.Context, plugin, key string, value []byte) error {
	switch {
	case len(key) == 0 || len(key) > MaxStateKeyBytes || !utf8.ValidString(key):
		return fmt.Errorf("state key: %w: want 1-%d bytes of UTF-8", ErrTooLarge, MaxStateKeyBytes)
	case len(value) > MaxStateValueBytes:
		return fmt.Errorf("state value of %d bytes: %w: limit is %d", len(value), ErrTooLarge, MaxStateValueBytes)
	}
	if value == nil {
		value = []byte{}
	}
	_, err := s.exec(ctx, `INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		plugin, key, value, micros(time.Now()))
	if err != nil {
		return fmt.Errorf("state put: %w", err)
	}
	return nil
}

// StateDelete removes a plugin's key; an absent key is not an error.
func (s *Store) StateDelete(ctx context.Context, plugin, key string) error {
	if _, err := s.exec(ctx, "DELETE FROM plugin_state WHERE plugin = ? AND key = ?", plugin, key); err != nil {
		return fmt.Errorf("state delete: %w", err)
	}
	return nil
}

// StateList returns a plugin's entries whose key starts with prefix,
// sorted by key bytes. The prefix is matched literally.
func (s *Store) StateList(ctx context.Context, plugin, prefix string) ([]KV, error) {
	// substr/length count characters in both dialects; unlike LIKE, no
	// character of the prefix is special, and unlike a range, no collation
	// is involved.
	rows, err := s.r.QueryContext(ctx, s.q("SELECT key, value FROM plugin_state WHERE plugin = ? AND substr(key, 1, ?) = ?"),
		plugin, utf8.RuneCountInString(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("state list: %w", err)
	}
	defer rows.Close()
	var out []KV
	for rows.Next() {
		var kv KV
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			return nil, fmt.Errorf("state list: %w", err)
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state list: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare([]byte(out[i].Key), []byte(out[j].Key)) < 0 })
	return out, nil
}

// PluginState is one plugin's State, as the sdk serves it to the plugin.
func (s *Store) PluginState(plugin string) sdk.State { return pluginState{s: s, plugin: plugin} }

type pluginState struct {
	s      *Store
	plugin string
}

// sdkError maps the store's errors to the plugin contract's.
func sdkError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", sdk.ErrNotFound, err)
	case errors.Is(err, ErrTooLarge):
		return fmt.Errorf("%w: %w", sdk.ErrTooLarge, err)
	case err != nil:
		return fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
	}
	return nil
}

func (p pluginState) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := p.s.StateGet(ctx, p.plugin, key)
	return v, sdkError(err)
}

func (p pluginState) Put(ctx context.Context, key string, value []byte) error {
	return sdkError(p.s.StatePut(ctx, p.plugin, key, value))
}

func (p pluginState) Delete(ctx context.Context, key string) error {
	return sdkError(p.s.StateDelete(ctx, p.plugin, key))
}

func (p pluginState) List(ctx context.Context, prefix string) ([]sdk.KeyValue, error) {
	kvs, err := p.s.StateList(ctx, p.plugin, prefix)
	if err != nil {
		return nil, sdkError(err)
	}
	out := make([]sdk.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = sdk.KeyValue{Key: kv.Key, Value: kv.Value}
	}
	return out, nil
}
