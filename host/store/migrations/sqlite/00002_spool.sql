-- +goose Up
CREATE TABLE deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT    NOT NULL,
    rows       BLOB    NOT NULL,
    row_count  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     INTEGER NOT NULL REFERENCES deliveries (id),
    pusher          TEXT    NOT NULL,
    uuid            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_until   INTEGER,
    last_error      TEXT,
    finished_at     INTEGER
);
CREATE INDEX tasks_due ON tasks (pusher, state, next_attempt_at);
CREATE INDEX tasks_line ON tasks (pusher, uuid, state, delivery_id);
CREATE INDEX tasks_delivery ON tasks (delivery_id);

-- +goose Down
DROP TABLE tasks;
DROP TABLE deliveries;
