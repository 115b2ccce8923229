package store

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// A unique or primary key violation is told by the driver's code on both
// databases; other failures, constraint ones included, are not one.
func TestIsUniqueViolationReadsTheDriversCode(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir()}
			if dialect == "postgres" {
				cfg.DatabaseURL = testkit.PostgresURL(t)
			}
			s, err := Open(context.Background(), cfg, hclog.NewNullLogger())
			testkit.Must(t, err)
			defer s.Close()
			exec := func(q string) error { _, err := s.w.Exec(q); return err }
			testkit.Must(t, exec("CREATE TABLE uniq (a TEXT PRIMARY KEY, b TEXT UNIQUE, c TEXT NOT NULL)"))
			testkit.Must(t, exec("INSERT INTO uniq VALUES ('1', 'x', 'c')"))
			for _, tc := range []struct {
				query string
				want  bool
			}{
				{"INSERT INTO uniq VALUES ('1', 'y', 'c')", true}, // primary key
				{"INSERT INTO uniq VALUES ('2', 'x', 'c')", true}, // unique
				{"INSERT INTO uniq VALUES ('3', 'z', NULL)", false},
				{"INSERT INTO nosuchtable VALUES (1)", false},
			} {
				err := exec(tc.query)
				if err == nil {
					t.Fatalf("%s: no error", tc.query)
				}
				if got := isUniqueViolation(err); got != tc.want {
					t.Errorf("%s: isUniqueViolation(%v) = %v, want %v", tc.query, err, got, tc.want)
				}
			}
			if isUniqueViolation(nil) {
				t.Error("isUniqueViolation(nil) = true")
			}
		})
	}
}
