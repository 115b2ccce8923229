package datagateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/pluginmgr"
)

// bioreactorColumns are the 47 measurement columns a ChiBio relay sends
// per row (it adds "error": null).
var bioreactorColumns = []string{
	"timeElapsed", "odMeasured", "odSetpoint", "odZeroSetpoint", "thermostatSetpoint", "heatingRate",
	"internalAirTemp", "externalAirTemp", "mediaTemp", "opAuxLevel", "pump1Rate", "pump2Rate", "pump3Rate",
	"pump4Rate", "mediaVol", "stirringRate", "led395NmSetpoint", "led457NmSetpoint", "led500NmSetpoint",
	"led523NmSetpoint", "led595NmSetpoint", "led623NmSetpoint", "led6500KSetpoint", "laserSetpoint",
	"ledUvIntSetpoint", "fp1Base", "fp1Emit1", "fp1Emit2", "fp2Base", "fp2Emit1", "fp2Emit2", "fp3Base",
	"fp3Emit1", "fp3Emit2", "customProgParam1", "customProgParam2", "customProgParam3", "customProgStatus",
	"zigzagTarget", "growthRate", "odMeasuredRaw", "od2", "od3", "od4", "ledSetpoint", "pumpFlow", "airPump",
}

// bioreactorBacklog is what the relay resends after an outage: n rows of
// 47 string values and "error": null, as one /data/batch body.
func bioreactorBacklog(uuid string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"uuid":%q,"rows":[`, uuid)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"index":%d,"data":{`, i)
		for j, col := range bioreactorColumns {
			fmt.Fprintf(&b, `%q:"%d.%017d",`, col, i, (i+1)*(j+7)*7919)
		}
		b.WriteString(`"error":null}}`)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// The edge of POST /data and /data/batch as a lab meets it. Every refused
// request stores nothing; what is accepted reaches the pusher as sent.
func TestDataEdge(t *testing.T) {
	if n := len(bioreactorColumns); n != 47 {
		t.Fatalf("%d bioreactor columns, want 47", n)
	}
	rowsDir := t.TempDir()
	e := newEnv(t, "PLUGIN_JSONL_DIR="+rowsDir)
	install(t, "pusher-jsonl", e.plugins, "pusher-jsonl")
	svc, base := start(t, e.config(t))
	waitFor(t, 60*time.Second, "the pusher to run", func() bool {
		st, err := svc.Plugins().Get("jsonl")
		return err == nil && st.State == pluginmgr.StateRunning
	})

	row := `{"uuid":"edge","row":{"index":0,"data":{"unit":"µL","odMeasured":0.42}}}`
	batch := `{"uuid":"edge","rows":[{"index":1,"data":{"unit":"µL"}},{"index":2,"data":{"unit":"mL"}}]}`
	backlog := bioreactorBacklog("reactor", 1000)
	if len(backlog) < 1_600_000 || len(backlog) > 1<<20*16 {
		t.Fatalf("backlog body is %d bytes, want about 1.7 MB", len(backlog))
	}
	tests := []struct {
		name, path string
		header     map[string]string // Content-Type is application/json unless set
		host       string
		body       []byte
		status     int
		field      string
		detailIn   string
	}{
		{"a form-encoded JSON body", "/data", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "", []byte(row), 415, "", "application/json"},
		{"text/plain to /data/batch", "/data/batch", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, "", []byte(batch), 415, "", `"text/plain" is not JSON`},
		{"a page of another origin", "/data/batch", map[string]string{"Origin": "http://evil.example"}, "", []byte(batch), 403, "", "ALLOWED_ORIGINS"},
		{"DNS rebinding", "/data", nil, "evil.example:8001", []byte(row), 403, "", "ALLOWED_HOSTS"},
		{"a Windows-1252 micro in a value", "/data", nil, "", []byte("{\"uuid\":\"edge\",\"row\":{\"index\":0,\"data\":{\"unit\":\"\xb5L\"}}}"),
			400, "row.data.unit", ""},
		{"a Windows-1252 micro in a batch", "/data/batch", nil, "", []byte("{\"uuid\":\"edge\",\"rows\":[{\"data\":{\"unit\":\"mL\"}},{\"data\":{\"unit\":\"\xb5L\"}}]}"),
			400, "rows[1].data.unit", ""},
		{"uuid twice", "/data", nil, "", []byte(`{"uuid":"a","uuid":"b","row":{"index":0,"data":{"keyOne":1}}}`), 400, "uuid", ""},
		{"row twice", "/data", nil, "", []byte(`{"uuid":"a","row":{"data":{"keyOne":1}},"row":{"data":{"keyOne":2}}}`), 400, "row", ""},
		{"index twice in a batch row", "/data/batch", nil, "", []byte(`{"uuid":"a","rows":[{"index":1,"index":2,"data":{"keyOne":1}}]}`), 400, "rows[0].index", ""},
		{"a data key twice", "/data/batch", nil, "", []byte(`{"uuid":"a","rows":[{"data":{"keyOne":1,"keyOne":2}}]}`), 400, "rows[0].data.keyOne", ""},
		{"deflate", "/data", map[string]string{"Content-Encoding": "deflate"}, "", []byte(row), 415, "", `"deflate" is not supported`},
		{"over 16 MiB", "/data/batch", map[string]string{"Content-Encoding": "gzip"}, "", testkit.Gzip(t, bioreactorBacklog("huge", 10000)),
			413, "", "MAX_BODY_BYTES (16777216 bytes"},
		{"a byte order mark", "/data", nil, "", append([]byte("\xef\xbb\xbf"), row...), 202, "", ""},
		{"gzip", "/data/batch", map[string]string{"Content-Encoding": "gzip"}, "", testkit.Gzip(t, []byte(batch)), 202, "", ""},
		{"a bioreactor's 1.7 MB backlog", "/data/batch", map[string]string{"Content-Type": "application/json; charset=utf-8"}, "", backlog, 202, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+tt.path, bytes.NewReader(tt.body))
			must(t, err)
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			r := testkit.Send(t, req)
			if r.Status != tt.status {
				t.Fatalf("got %d %.300s, want %d", r.Status, r.Body, tt.status)
			}
			if r.Status == http.StatusAccepted {
				return
			}
			detail, fields := r.Problem(t)
			if _, ok := fields[tt.field]; tt.field != "" && !ok {
				t.Fatalf("problem does not name %q: %s", tt.field, r.Body)
			}
			if !strings.Contains(detail, tt.detailIn) {
				t.Fatalf("detail %q does not say %q", detail, tt.detailIn)
			}
		})
	}

	// Only the accepted rows reach the pusher, as sent, in valid UTF-8.
	want := `{"uuid":"edge","index":0,"data":{"unit":"µL","odMeasured":0.42}}` + "\n" +
		`{"uuid":"edge","index":1,"data":{"unit":"µL"}}` + "\n" +
		`{"uuid":"edge","index":2,"data":{"unit":"mL"}}` + "\n"
	var got []byte
	waitFor(t, 20*time.Second, "the accepted rows in the pusher's file", func() bool {
		got, _ = os.ReadFile(filepath.Join(rowsDir, "edge.jsonl"))
		return len(got) >= len(want)
	})
	if string(got) != want {
		t.Fatalf("edge.jsonl:\n got %q\nwant %q", got, want)
	}
	var reactor []byte
	waitFor(t, 60*time.Second, "the backlog's 1000 rows in the pusher's file", func() bool {
		reactor, _ = os.ReadFile(filepath.Join(rowsDir, "reactor.jsonl"))
		return bytes.Count(reactor, []byte("\n")) >= 1000
	})
	if !utf8.Valid(reactor) || bytes.Count(reactor, []byte("\n")) != 1000 {
		t.Fatalf("reactor.jsonl: %d lines, valid UTF-8 %v", bytes.Count(reactor, []byte("\n")), utf8.Valid(reactor))
	}
	first, _, _ := bytes.Cut(reactor, []byte("\n"))
	body := string(backlog)
	sent := body[strings.Index(body, `"data":`)+len(`"data":`) : strings.Index(body, `}},`)+1]
	if wantFirst := `{"uuid":"reactor","index":0,"data":` + sent + `}`; string(first) != wantFirst {
		t.Fatalf("first backlog row:\n got %s\nwant %s", first, wantFirst)
	}
	if _, err := os.Stat(filepath.Join(rowsDir, "huge.jsonl")); err == nil {
		t.Fatal("rows of a refused body reached the pusher")
	}
}
