package client

import (
	"container/list"
	"sync"
	"time"
)

// seen remembers the message ids handled within a window, at most max of
// them (the oldest forgotten first), and the ids being handled now.
type seen struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu       sync.Mutex
	handled  map[string]*list.Element // of handledID, oldest at the front
	order    *list.List
	inflight map[string]chan struct{}
}

type handledID struct {
	id string
	at time.Time
}

func newSeen(window time.Duration, max int) *seen {
	return &seen{window: window, max: max, now: time.Now, handled: map[string]*list.Element{}, order: list.New(), inflight: map[string]chan struct{}{}}
}

// begin starts handling id. It reports handled when id was handled within
// the window; else, while another delivery of id is being handled, it
// returns a channel closed once that one ends (call begin again then);
// else it marks id in flight and returns (false, nil): call end.
func (s *seen) begin(id string) (handled bool, wait <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	if _, ok := s.handled[id]; ok {
		return true, nil
	}
	if ch, ok := s.inflight[id]; ok {
		return false, ch
	}
	s.inflight[id] = make(chan struct{})
	return false, nil
}

// end ends handling id: ok records it as handled.
func (s *seen) end(id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, found := s.inflight[id]; found {
		close(ch)
		delete(s.inflight, id)
	}
	if !ok {
		return
	}
	if e, found := s.handled[id]; found {
		s.order.Remove(e)
	}
	s.handled[id] = s.order.PushBack(handledID{id: id, at: s.now()})
	for s.order.Len() > s.max {
		s.forget(s.order.Front())
	}
}

// expire forgets the ids handled before the window.
func (s *seen) expire() {
	cutoff := s.now().Add(-s.window)
	for e := s.order.Front(); e != nil && !e.Value.(handledID).at.After(cutoff); e = s.order.Front() {
		s.forget(e)
	}
}

func (s *seen) forget(e *list.Element) {
	delete(s.handled, e.Value.(handledID).id)
	s.order.Remove(e)
}

// size is the number of ids remembered.
func (s *seen) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
