package controltower_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/sdk"
)

// The edge of POST /triggers as a lab meets it: pages of other sites,
// rebound host names, Windows files, compressed bodies. Every refused
// request stores nothing.
func TestTriggerEdge(t *testing.T) {
	cfg := testConfig(t, "amqp://guest:guest@"+brokerAddr()+"/")
	cfg.MaxBodyBytes = 4096
	_, base := start(t, cfg)

	const probe = `{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150}}`
	bigSpec := `{"apiVersion":"OT-2/v1alpha1","protocol":"Big","spec":{"note":"` + strings.Repeat("x", 5000) + `"}}`
	tests := []struct {
		name     string
		header   map[string]string // Content-Type is application/json unless set
		host     string
		body     []byte
		status   int
		field    string // a field the problem names
		detailIn string
	}{
		{"a page posting text/plain across origins", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"},
			"", []byte(probe), 403, "", `Origin "http://evil.example"`},
		{"text/plain without Origin", map[string]string{"Content-Type": "text/plain"}, "", []byte(probe), 415, "", "application/json"},
		{"a form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "", []byte(probe), 415, "", "application/json"},
		{"no Content-Type", map[string]string{"Content-Type": ""}, "", []byte(probe), 415, "", "no Content-Type"},
		{"a JSON page across origins", map[string]string{"Origin": "http://evil.example"}, "", []byte(probe), 403, "", "ALLOWED_ORIGINS"},
		{"DNS rebinding", nil, "evil.example", []byte(probe), 403, "", `Host "evil.example"`},
		{"protocol twice", nil, "", []byte(`{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","protocol":"Other","spec":{"volume":150}}`),
			400, "protocol", ""},
		{"a spec member twice", nil, "", []byte(`{"apiVersion":"OT-2/v1alpha1","protocol":"Probe","spec":{"volume":150,"volume":10}}`),
			400, "spec.volume", ""},
		{"a Windows-1252 byte", nil, "", []byte("{\"apiVersion\":\"OT-2/v1alpha1\",\"protocol\":\"Probe\",\"spec\":{\"unit\":\"\xb5L\"}}"),
			400, "spec.unit", ""},
		{"brotli", map[string]string{"Content-Encoding": "br"}, "", []byte(probe), 415, "", "gzip"},
		{"over MAX_BODY_BYTES once decompressed", map[string]string{"Content-Encoding": "gzip"}, "", testkit.Gzip(t, []byte(bigSpec)),
			413, "", "MAX_BODY_BYTES (4096 bytes"},
		{"a byte order mark", nil, "", []byte("\xef\xbb\xbf" + probe), 201, "", ""},
		{"gzip", map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json; charset=utf-8"}, "", testkit.Gzip(t, []byte(probe)), 201, "", ""},
		{"its own origin, as the status page", map[string]string{"Origin": base}, "", []byte(probe), 201, "", ""},
		{"localhost", nil, strings.Replace(strings.TrimPrefix(base, "http://"), "127.0.0.1", "localhost", 1), []byte(probe), 201, "", ""},
	}
	created := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+"/triggers", bytes.NewReader(tt.body))
			must(t, err)
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				if v == "" {
					req.Header.Del(k)
					continue
				}
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			r := testkit.Send(t, req)
			if r.Status != tt.status {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tt.status)
			}
			if r.Status == http.StatusCreated {
				created++
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
	var list struct{ Triggers []sdk.StoredTrigger }
	call(t, http.MethodGet, base+"/triggers?limit=100", nil).JSON(t, &list)
	if len(list.Triggers) != created || created != 4 {
		t.Fatalf("%d triggers stored, %d answered 201 (want 4): a refused request stored something", len(list.Triggers), created)
	}
	for _, tr := range list.Triggers {
		var spec bytes.Buffer
		must(t, json.Compact(&spec, tr.Spec))
		if tr.Protocol != "Probe" || spec.String() != `{"volume":150}` {
			t.Fatalf("stored %s %s", tr.Protocol, tr.Spec)
		}
	}
	// A republish reads no body but starts a robot all the same.
	req, err := http.NewRequest(http.MethodPost, base+"/triggers/"+list.Triggers[0].UUID+"/republish", strings.NewReader(""))
	must(t, err)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "http://evil.example")
	if r := testkit.Send(t, req); r.Status != http.StatusForbidden {
		t.Fatalf("republish from another origin: %d %s", r.Status, r.Body)
	}
}
