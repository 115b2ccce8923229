package defaults_test

import (
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/defaults"
)

type config struct {
	Name    string
	Timeout time.Duration
	Count   int
	Ratio   float64
	List    []string
	Flag    bool
	Nested  struct{ N int }
}

func TestFillGivesUnsetFieldsTheirDefault(t *testing.T) {
	def := config{Name: "d", Timeout: time.Second, Count: 5, Ratio: 0.5, List: []string{"d"}, Flag: true}
	def.Nested.N = 7
	for _, tc := range []struct {
		name     string
		cfg, out config
	}{
		{"all unset", config{}, config{Name: "d", Timeout: time.Second, Count: 5, Ratio: 0.5, List: []string{"d"}}},
		{"negatives are unset", config{Timeout: -1, Count: -3, Ratio: -1}, config{Name: "d", Timeout: time.Second, Count: 5, Ratio: 0.5, List: []string{"d"}}},
		{"set fields stay", config{Name: "x", Timeout: time.Minute, Count: 1, Ratio: 2, List: []string{}, Flag: false},
			config{Name: "x", Timeout: time.Minute, Count: 1, Ratio: 2, List: []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			defaults.Fill(&cfg, def)
			if cfg.Name != tc.out.Name || cfg.Timeout != tc.out.Timeout || cfg.Count != tc.out.Count || cfg.Ratio != tc.out.Ratio ||
				len(cfg.List) != len(tc.out.List) || (cfg.List == nil) != (tc.out.List == nil) || cfg.Flag || cfg.Nested.N != 0 {
				t.Fatalf("got %+v, want %+v (a bool or a nested struct is never filled)", cfg, tc.out)
			}
		})
	}
}
