// Package retry holds the host's retry delays: exponential backoff
// policies, each computed by github.com/cenkalti/backoff/v5, so the
// doubling, the cap and the jitter are the library's and not a loop of
// each caller's.
package retry

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is an exponential backoff. The delay before retry n (0-based) is
// Min doubled n times, capped at Max, plus a random part of up to Jitter
// times that (0.25: up to 25% more), so that instances or plugins failing
// together do not retry in step. Jitter 0 gives exact delays.
type Policy struct {
	Min, Max time.Duration
	Jitter   float64
}

// Backoff returns the policy as a fresh backoff.ExponentialBackOff: its
// NextBackOff gives the delays before retries 0, 1, 2, ... in turn, and
// Reset starts again from Min.
func (p Policy) Backoff() *backoff.ExponentialBackOff {
	// The library draws from interval*(1 ± RandomizationFactor). Centring
	// its interval Jitter/2 above the policy's delay d makes that range
	// [d, d*(1+Jitter)], the policy's.
	centre := 1 + p.Jitter/2
	b := &backoff.ExponentialBackOff{
		InitialInterval:     time.Duration(float64(p.Min) * centre),
		MaxInterval:         time.Duration(float64(p.Max) * centre),
		Multiplier:          2,
		RandomizationFactor: p.Jitter / 2 / centre,
	}
	b.Reset()
	return b
}

// maxDoublings bounds the steps Delay takes: past it any Min has reached
// any Max.
const maxDoublings = 63

// Delay is the delay before retry n (0-based): for retries counted in a
// store rather than by a running loop.
func (p Policy) Delay(n int) time.Duration {
	b := p.Backoff()
	d := b.NextBackOff()
	for range min(max(n, 0), maxDoublings) {
		d = b.NextBackOff()
	}
	return d
}
