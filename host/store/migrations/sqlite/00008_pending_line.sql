-- +goose Up
-- A claim reads a pusher's pending tasks oldest first to find the head of
-- each uuid's line (PostgreSQL has had this index since 00004). It is
-- read outside the write transaction, so intake no longer waits for it.
CREATE INDEX tasks_pending ON tasks (pusher, delivery_id) WHERE state = 'pending';

-- +goose Down
DROP INDEX tasks_pending;
