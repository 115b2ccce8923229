-- +goose Up
-- The W3C trace context (traceparent, and tracestate after a newline) of
-- the request or watcher emission that stored a trigger or a data
-- request, so that its publish and its pushes continue the caller's trace.
ALTER TABLE triggers ADD COLUMN trace_context TEXT;
ALTER TABLE deliveries ADD COLUMN trace_context TEXT;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN trace_context;
ALTER TABLE triggers DROP COLUMN trace_context;
