-- +goose Up
-- Several instances on one database publish the outbox together: each
-- claims the entries it publishes until its claim expires (claimed_until,
-- microseconds since the epoch on the database's clock). reclaimed_from is
-- the owner whose expired claim the current one took over: that owner may
-- have published the entry already.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE outbox ADD COLUMN reclaimed_from TEXT;
CREATE INDEX outbox_claimed_by ON outbox (claimed_by) WHERE claimed_by IS NOT NULL;

-- The running instances of each service, kept by their heartbeats
-- (microseconds since the epoch; last_seen on the database's clock).
CREATE TABLE instances (
    service    TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (service, id)
);

-- +goose Down
DROP TABLE instances;
DROP INDEX outbox_claimed_by;
ALTER TABLE outbox DROP COLUMN reclaimed_from;
ALTER TABLE outbox DROP COLUMN claimed_until;
ALTER TABLE outbox DROP COLUMN claimed_by;
