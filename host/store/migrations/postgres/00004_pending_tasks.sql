-- +goose Up
-- Only the pending tasks: the spool's usage (pending tasks per pusher,
-- bytes of rows waiting for delivery) is read from here every second by
-- each gateway sharing the database, at a cost that follows the backlog,
-- not the history of delivered tasks.
CREATE INDEX tasks_pending ON tasks (pusher, delivery_id) WHERE state = 'pending';

-- +goose Down
DROP INDEX tasks_pending;
