package httpapi_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routinglayer/routing/host/httpapi"
)

func TestOrigins(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	loopback := httpapi.Origins{CheckHost: true, AllowedHosts: []string{"robots.lab.internal"}}.Middleware(ok)
	listed := httpapi.Origins{AllowedOrigins: []string{"https://LIMS.example.org/"}}.Middleware(ok)
	open := httpapi.Origins{}.Middleware(ok)
	tests := []struct {
		name, host, origin string
		tls                bool
		handler            http.Handler
		want               int
	}{
		{"no Origin (curl, relays, routectl)", "127.0.0.1:8000", "", false, loopback, 200},
		{"same origin (the status page)", "127.0.0.1:8000", "http://127.0.0.1:8000", false, loopback, 200},
		{"same origin over TLS", "localhost:8000", "https://localhost:8000", true, loopback, 200},
		{"another site's page", "127.0.0.1:8000", "http://evil.example", false, loopback, 403},
		{"another port is another origin", "127.0.0.1:8000", "http://127.0.0.1:9000", false, loopback, 403},
		{"http page to an https service", "localhost:8000", "http://localhost:8000", true, loopback, 403},
		{"a sandboxed frame (Origin: null)", "127.0.0.1:8000", "null", false, loopback, 403},
		{"DNS rebinding: a foreign Host on loopback", "evil.example", "", false, loopback, 403},
		{"rebinding with its own origin", "evil.example:8000", "http://evil.example:8000", false, loopback, 403},
		{"localhost", "localhost:8000", "", false, loopback, 200},
		{"a name under .localhost", "ct.localhost:8000", "", false, loopback, 200},
		{"IPv6 loopback", "[::1]:8000", "", false, loopback, 200},
		{"127.0.0.2", "127.0.0.2", "", false, loopback, 200},
		{"a name in ALLOWED_HOSTS, any case", "Robots.Lab.Internal:8000", "", false, loopback, 200},
		{"a private address is not loopback", "192.168.1.5:8000", "", false, loopback, 403},
		{"Host not checked with tokens or beyond loopback", "robots.example:8000", "", false, open, 200},
		{"an origin in ALLOWED_ORIGINS", "api.example.org", "https://lims.example.org", false, listed, 200},
		{"an origin not listed", "api.example.org", "https://other.example.org", false, listed, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/triggers", nil)
			req.Host = tt.host
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}
