-- +goose Up
-- A delivery has one task per pusher. Saying so lets the planner look a
-- task up by its delivery exactly, even before it has statistics.
CREATE UNIQUE INDEX tasks_delivery_pusher ON tasks (delivery_id, pusher);
DROP INDEX tasks_delivery;

-- +goose Down
CREATE INDEX tasks_delivery ON tasks (delivery_id);
DROP INDEX tasks_delivery_pusher;
