-- +goose Up
CREATE TABLE triggers (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    idempotency_key TEXT    UNIQUE,
    api_version     TEXT    NOT NULL,
    protocol        TEXT    NOT NULL,
    body            BYTEA   NOT NULL,
    source          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    published_at    BIGINT
);
CREATE INDEX triggers_created_at ON triggers (created_at);

CREATE TABLE outbox (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger_uuid    TEXT    NOT NULL UNIQUE REFERENCES triggers (uuid),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT
);
CREATE INDEX outbox_next_attempt_at ON outbox (next_attempt_at);

CREATE TABLE plugin_state (
    plugin     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BYTEA   NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (plugin, key)
);

-- +goose Down
DROP TABLE plugin_state;
DROP TABLE outbox;
DROP TABLE triggers;
