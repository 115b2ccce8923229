package pluginside

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// A plugin's log line is what go-plugin hosts parse (hclog's @ keys, its
// timestamp layout), and a duration reads as text.
func TestLoggerWritesHclogLines(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, ParseLevel("debug"))
	log.Debug("polled", "every", 2*time.Second, "count", 3)
	log.Log(t.Context(), LevelTrace, "not shown at debug")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if line["@level"] != "debug" || line["@message"] != "polled" || line["every"] != "2s" || line["count"] != 3.0 {
		t.Fatalf("line %s", buf.String())
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", line["@timestamp"].(string)); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	for _, tt := range []struct {
		in   string
		want slog.Level
	}{{"trace", LevelTrace}, {"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}, {"", slog.LevelInfo}} {
		if got := ParseLevel(tt.in); got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
