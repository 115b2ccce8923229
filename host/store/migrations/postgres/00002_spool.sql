-- +goose Up
CREATE TABLE deliveries (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid       TEXT    NOT NULL,
    rows       BYTEA   NOT NULL,
    row_count  BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE tasks (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     BIGINT  NOT NULL REFERENCES deliveries (id),
    pusher          TEXT    NOT NULL,
    uuid            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT,
    finished_at     BIGINT
);
CREATE INDEX tasks_due ON tasks (pusher, state, next_attempt_at);
CREATE INDEX tasks_line ON tasks (pusher, uuid, state, delivery_id);
CREATE INDEX tasks_delivery ON tasks (delivery_id);

-- +goose Down
DROP TABLE tasks;
DROP TABLE deliveries;
