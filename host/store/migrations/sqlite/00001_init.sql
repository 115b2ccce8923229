-- +goose Up
CREATE TABLE triggers (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            TEXT    NOT NULL UNIQUE,
    idempotency_key TEXT    UNIQUE,
    api_version     TEXT    NOT NULL,
    protocol        TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    source          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    published_at    INTEGER
);
CREATE INDEX triggers_created_at ON triggers (created_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_uuid    TEXT    NOT NULL UNIQUE REFERENCES triggers (uuid),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX outbox_next_attempt_at ON outbox (next_attempt_at);

CREATE TABLE plugin_state (
    plugin     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin, key)
);

-- +goose Down
DROP TABLE plugin_state;
DROP TABLE outbox;
DROP TABLE triggers;
