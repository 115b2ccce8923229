package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// database returns the DATABASE_URL of run i: "" (embedded SQLite) without
// a PostgreSQL URL, else that URL with a fresh schema, which drop removes.
func database(ctx context.Context, postgres string, i int) (dbURL string, drop func(), err error) {
	if postgres == "" {
		return "", func() {}, nil
	}
	u, err := url.Parse(postgres)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres: %w", err)
	}
	admin, err := sql.Open("pgx", postgres)
	if err != nil {
		return "", nil, err
	}
	schema := fmt.Sprintf("bench_%d_%d", os.Getpid(), i)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}, nil
}
