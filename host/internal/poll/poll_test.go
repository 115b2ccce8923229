package poll_test

import (
	"context"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/poll"
)

func TestEveryStopsWhenToldTo(t *testing.T) {
	calls := 0
	poll.Every(t.Context(), time.Millisecond, func() bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Fatalf("%d calls, want 3: f returning false stops the loop", calls)
	}
}

func TestEveryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	calls := 0
	go func() {
		defer close(done)
		poll.Every(ctx, time.Millisecond, func() bool {
			calls++
			if calls == 2 {
				cancel()
			}
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return once its context ended")
	}
	if calls != 2 {
		t.Fatalf("%d calls, want 2: none after the context ended", calls)
	}
}
