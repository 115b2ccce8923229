-- +goose Up
-- SQLite's 00008 adds the index of pending tasks PostgreSQL has had since
-- 00004: nothing to do here.
SELECT 1;

-- +goose Down
SELECT 1;
