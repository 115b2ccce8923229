package client

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWellName(t *testing.T) {
	p := Plate{Rows: 8, Columns: 12}
	for i, want := range map[int]string{0: "A1", 1: "B1", 7: "H1", 8: "A2", 95: "H12", 96: "", -1: ""} {
		if got := p.WellName(i); got != want {
			t.Errorf("WellName(%d) = %q, want %q", i, got, want)
		}
	}
	tall := Plate{Rows: 30, Columns: 1}
	if got := tall.WellName(26); got != "AA1" {
		t.Errorf("row 27: %q", got)
	}
	if got := tall.WellName(29); got != "AD1" {
		t.Errorf("row 30: %q", got)
	}
}

func TestDecodeTriggerAndWells(t *testing.T) {
	tr, err := DecodeTrigger([]byte(`{"uuid":"u1","apiVersion":"OT-2/v1alpha1","protocol":"P","plate":{"rows":2,"columns":1},"spec":[{"volume":1},{"volume":2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	wells, err := tr.Wells()
	if err != nil || len(wells) != 2 || string(wells[1]) != `{"volume":2}` || tr.Plate.Wells() != 2 || len(tr.Raw) == 0 {
		t.Fatalf("%+v %s %v", tr, wells, err)
	}
	tr, err = DecodeTrigger([]byte(`{"uuid":"u2","spec":{"volume":150}}`))
	if err != nil {
		t.Fatal(err)
	}
	if wells, err := tr.Wells(); err != nil || len(wells) != 1 || string(wells[0]) != `{"volume":150}` {
		t.Fatalf("object spec: %s %v", wells, err)
	}
	for _, bad := range []string{`{"spec":{}}`, `not json`, `[]`} {
		if _, err := DecodeTrigger([]byte(bad)); err == nil {
			t.Errorf("%s: decoded", bad)
		}
	}
	if _, err := (Trigger{UUID: "x", Spec: json.RawMessage(`"s"`)}).Wells(); err == nil {
		t.Error("a string spec has wells")
	}
}

func TestSeenRemembersWithinWindowAndBound(t *testing.T) {
	s := newSeen(time.Minute, 3)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	for _, id := range []string{"a", "b"} {
		if handled, wait := s.begin(id); handled || wait != nil {
			t.Fatalf("%s: new id handled %v wait %v", id, handled, wait)
		}
	}
	// b in flight: a second delivery waits for it.
	_, wait := s.begin("b")
	if wait == nil {
		t.Fatal("no wait for an id in flight")
	}
	s.end("a", true)
	s.end("b", false)
	select {
	case <-wait:
	default:
		t.Fatal("wait not released by end")
	}
	if handled, _ := s.begin("a"); !handled {
		t.Fatal("a not remembered")
	}
	if handled, wait := s.begin("b"); handled || wait != nil {
		t.Fatal("failed b remembered")
	}
	s.end("b", true)
	for _, id := range []string{"c", "d"} {
		s.begin(id)
		s.end(id, true)
	}
	if s.size() != 3 {
		t.Fatalf("size %d, want 3", s.size())
	}
	if handled, _ := s.begin("a"); handled {
		t.Fatal("a remembered past the bound")
	}
	s.end("a", false)
	now = now.Add(2 * time.Minute)
	if handled, _ := s.begin("d"); handled || s.size() != 0 {
		t.Fatalf("remembered past the window: size %d", s.size())
	}
}

func TestNodes(t *testing.T) {
	nodes, err := Nodes(" amqp://u:p@a:5672/ , amqps://b/vh")
	if err != nil || len(nodes) != 2 || nodes[0] != "amqp://u:p@a:5672/" || nodes[1] != "amqps://b/vh" {
		t.Fatalf("%q %v", nodes, err)
	}
	for _, bad := range []string{"", "amqp://a/,", "http://a/", "amqp://u:secret@/x"} {
		_, err := Nodes(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error shows the password: %v", bad, err)
		}
	}
}

func TestConsumeOptionsDefaultsAndChecks(t *testing.T) {
	o := ConsumeOptions{Queue: "q"}.withDefaults()
	if o.Exchange != "triggers" || o.Prefetch != 16 || o.Concurrency != 1 || o.MaxDeliveries != 5 || o.DedupWindow != time.Hour || o.ConnectionName != "q" {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []ConsumeOptions{{}, {Queue: "amq.x"}, {Queue: "q", Prefetch: -1}, {Queue: "q", RetryMin: time.Minute, RetryMax: time.Second}} {
		if err := bad.withDefaults().check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if DeadLetterName("robot") != "robot.dead" {
		t.Fatal(DeadLetterName("robot"))
	}
}
