-- +goose Up
-- One row per Idempotency-Key of an accepted request, stored in the
-- transaction that stored what the request created. scope is the
-- endpoint (/data, /data/batch, /triggers); body_hash the SHA-256 of the
-- request body; status the original answer's HTTP status and ref what it
-- created (a delivery id, a trigger uuid); created_at and expires_at are
-- microseconds since the epoch. An expired row is ignored, replaced by a
-- new use of its key, and purged.
CREATE TABLE idempotency_keys (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    body_hash  BLOB    NOT NULL,
    status     INTEGER NOT NULL,
    ref        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
