package sdktest

import (
	"bytes"
	"sync"
	"testing"
)

// testLog returns a writer whose lines go to tb.Log until the test ends;
// what is written later (a plugin goroutine still logging) is dropped, as
// testing does not allow logging after a test completed.
func testLog(tb testing.TB) *logWriter {
	w := &logWriter{tb: tb}
	tb.Cleanup(w.close) // registered first, so it runs after the others
	return w
}

type logWriter struct {
	tb      testing.TB
	mu      sync.Mutex
	closed  bool
	partial []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.tb.Log(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *logWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.tb.Log(string(w.partial))
	}
	w.closed = true
}
