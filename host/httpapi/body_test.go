package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routinglayer/routing/host/httpapi"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadJSON(t *testing.T) {
	const body = `{"uuid":"a"}`
	big := `{"k":"` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name, contentType, encoding string
		body                        []byte
		want                        int
		wantIn                      string
	}{
		{"json", "application/json", "", []byte(body), 200, ""},
		{"json with charset, any case", "Application/JSON; charset=UTF-8", "", []byte(body), 200, ""},
		{"a +json type", "application/problem+json", "", []byte(body), 200, ""},
		{"text/plain, as a page may send across origins", "text/plain", "", []byte(body), 415, `"text/plain" is not JSON`},
		{"a form", "application/x-www-form-urlencoded", "", []byte(body), 415, "application/json"},
		{"multipart", "multipart/form-data; boundary=x", "", []byte(body), 415, "application/json"},
		{"no content type", "", "", []byte(body), 415, "no Content-Type"},
		{"unparsable content type", "application/json; =", "", []byte(body), 415, "cannot be parsed"},
		{"gzip", "application/json", "gzip", gzipped(t, body), 200, ""},
		{"x-gzip, upper case", "application/json", "X-GZIP", gzipped(t, body), 200, ""},
		{"identity", "application/json", "identity", []byte(body), 200, ""},
		{"brotli", "application/json", "br", []byte(body), 415, `Content-Encoding "br" is not supported`},
		{"gzip label on plain bytes", "application/json", "gzip", []byte(body), 400, "not gzip data"},
		{"over the limit", "application/json", "", []byte(big), 413, "MAX_BODY_BYTES (1024 bytes"},
		{"over the limit only once decompressed", "application/json", "gzip", gzipped(t, big), 413, "MAX_BODY_BYTES (1024 bytes, counted after decompression)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.encoding == "gzip" && tt.want == 413 && len(tt.body) > 1024 {
				t.Fatalf("the compressed body (%d bytes) should be under the limit for this case", len(tt.body))
			}
			req := httptest.NewRequest(http.MethodPost, "/data", bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			rec := httptest.NewRecorder()
			got, err := httpapi.ReadJSON(req, 1024)
			ok := err == nil
			if !ok {
				httpapi.WriteError(rec, req, err)
			}
			if tt.want == 200 {
				if !ok || string(got) != body {
					t.Fatalf("got %q, %v (%d %s), want the body", got, ok, rec.Code, rec.Body)
				}
				return
			}
			if ok || rec.Code != tt.want {
				t.Fatalf("got ok=%v %d, want %d", ok, rec.Code, tt.want)
			}
			var p httpapi.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || !strings.Contains(p.Detail, tt.wantIn) {
				t.Fatalf("problem %s (%v), want detail containing %q", rec.Body, err, tt.wantIn)
			}
		})
	}
}
