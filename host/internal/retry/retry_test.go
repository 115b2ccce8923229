package retry_test

import (
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/retry"
)

func TestDelayDoublesFromMinToMaxWithinTheJitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy retry.Policy
		n      int
		lo, hi time.Duration
	}{
		{"first retry waits Min", retry.Policy{Min: time.Second, Max: time.Minute}, 0, time.Second, time.Second},
		{"doubles each retry", retry.Policy{Min: time.Second, Max: time.Minute}, 3, 8 * time.Second, 8 * time.Second},
		{"capped at Max", retry.Policy{Min: time.Second, Max: time.Minute}, 10, time.Minute, time.Minute},
		{"many retries stay at Max", retry.Policy{Min: time.Nanosecond, Max: time.Hour}, 1 << 20, time.Hour, time.Hour},
		{"jitter only adds", retry.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}, 0, 500 * time.Millisecond, 600 * time.Millisecond},
		{"jitter on a doubled delay", retry.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.25}, 2, 2 * time.Second, 2500 * time.Millisecond},
		{"jitter on Max", retry.Policy{Min: time.Second, Max: 5 * time.Minute, Jitter: 0.25}, 20, 5 * time.Minute, 375 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The jitter is random: many draws must all fall in range and
			// not all be the same when there is any.
			seen := map[time.Duration]bool{}
			for range 200 {
				d := tc.policy.Delay(tc.n)
				// The library rounds through float64 and adds at most 1ns.
				if d < tc.lo-time.Microsecond || d > tc.hi+time.Microsecond {
					t.Fatalf("Delay(%d) = %s, want %s to %s", tc.n, d, tc.lo, tc.hi)
				}
				seen[d] = true
			}
			if jittered := tc.hi > tc.lo; jittered != (len(seen) > 1) {
				t.Errorf("%d distinct delays in 200 draws; jitter %v", len(seen), tc.policy.Jitter)
			}
		})
	}
}

func TestBackoffStartsAgainAfterReset(t *testing.T) {
	b := retry.Policy{Min: 200 * time.Millisecond, Max: time.Second}.Backoff()
	var got []time.Duration
	for range 5 {
		got = append(got, b.NextBackOff().Round(time.Millisecond))
	}
	b.Reset()
	got = append(got, b.NextBackOff().Round(time.Millisecond))
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, 200 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
}
