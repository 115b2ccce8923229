package pluginmgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hashicorp/go-hclog"
)

// handshakeError rewrites go-plugin's error for a first line on the
// plugin's stdout that is not its handshake: go-plugin's text blames the
// architecture, missing libraries or permissions, while the usual cause is
// a plugin printing before it serves. go-plugin has no typed error for
// this, so its message ("Unrecognized remote plugin message: <line>") is
// read; any other error is returned as it is.
func handshakeError(err error) error {
	rest, ok := strings.CutPrefix(err.Error(), "Unrecognized remote plugin message: ")
	if !ok {
		return err
	}
	line, _, _ := strings.Cut(rest, "\n")
	if line == "" {
		return errors.New("the plugin closed its stdout before the handshake (see its stderr lines)")
	}
	return fmt.Errorf("wrote to stdout before the handshake: %q (stdout carries go-plugin's handshake: a plugin must not print there; log to stderr, with the SDK's logger)", line)
}

// quietStderr returns logger for go-plugin, less the sub-logger through
// which go-plugin re-logs the plugin's stderr (named after the file): it
// parses JSON values into float64s (a duration of 2s logged as 2e+09)
// and loses their order. A relogger does that job instead.
func quietStderr(logger hclog.Logger, file string) hclog.Logger {
	return &quietLogger{Logger: logger, file: file}
}

type quietLogger struct {
	hclog.Logger
	file string
}

func (l *quietLogger) Named(name string) hclog.Logger {
	if name == l.file {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	}
	return l.Logger.Named(name)
}

// relogger logs a plugin's stderr, line by line, through log. A JSON line
// in hclog's shape (the Go SDK's and the Python kit's) is logged at its
// @level with its @message and its other members as attributes, in the
// plugin's order and with their values as written: a string as the
// string ("2s"), a number as its digits, true, false and null as such,
// an object or array as its JSON. Any other line is logged at debug, or
// at error once a Go panic starts.
type relogger struct {
	log hclog.Logger

	mu      sync.Mutex
	partial []byte
	panic   bool
}

func newRelogger(log hclog.Logger) *relogger { return &relogger{log: log} }

// maxLogLine bounds what a relogger holds of a line without its newline;
// a longer one is logged in pieces of this size.
const maxLogLine = 64 << 10

// Write takes what go-plugin copies from stderr: each line, then its
// newline, in separate writes.
func (r *relogger) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial = append(r.partial, p...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		r.relog(r.partial[:i])
		r.partial = r.partial[i+1:]
	}
	for len(r.partial) >= maxLogLine {
		r.relog(r.partial[:maxLogLine])
		r.partial = r.partial[maxLogLine:]
	}
	return len(p), nil
}

func (r *relogger) relog(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if level, msg, args, ok := parseLogLine(line); ok && !r.panic {
		r.log.Log(level, msg, args...)
		return
	}
	if bytes.HasPrefix(line, []byte("panic: ")) {
		r.panic = true
	}
	if r.panic {
		r.log.Error(string(line))
		return
	}
	r.log.Debug(string(line))
}

// parseLogLine reads one hclog JSON line; ok is false for anything else.
func parseLogLine(line []byte) (level hclog.Level, msg string, args []any, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return 0, "", nil, false
	}
	level = hclog.Info
	seen := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return 0, "", nil, false
		}
		key := name.String() // before the next read voids the token
		raw, err := dec.ReadValue()
		if err != nil {
			return 0, "", nil, false
		}
		value := logValue(raw)
		switch key {
		case "@message":
			msg, seen = fmt.Sprint(value), true
		case "@level":
			if l := hclog.LevelFromString(fmt.Sprint(value)); l != hclog.NoLevel {
				level = l
			}
		case "@timestamp":
			// The host logs with its own time.
		default:
			args = append(args, key, value)
		}
	}
	return level, msg, args, seen
}

// logValue is a JSON value as a log attribute keeps it.
func logValue(raw jsontext.Value) any {
	switch raw.Kind() {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '0':
		return json.Number(raw)
	}
	return string(raw)
}
