-- +goose Up
-- Claims read a pusher's pending tasks in order from tasks_pending; no
-- query uses tasks_line any more, and every insert and every finished task
-- paid for keeping it.
DROP INDEX tasks_line;

-- +goose Down
CREATE INDEX tasks_line ON tasks (pusher, uuid, state, delivery_id);
