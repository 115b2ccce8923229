-- +goose Up
-- One row per watcher instance name. holder is the instance running it
-- ('' when none) until expires_at (microseconds since the epoch, on the
-- database's clock); stopped keeps an operator's stop for every instance;
-- restarts and starts count operator requests the holder acts on.
CREATE TABLE watcher_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL DEFAULT 0,
    stopped    INTEGER NOT NULL DEFAULT 0,
    restarts   INTEGER NOT NULL DEFAULT 0,
    starts     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE watcher_leases;
