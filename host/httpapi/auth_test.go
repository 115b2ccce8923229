package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routinglayer/routing/host/httpapi"
)

func TestAuthenticate(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := httpapi.Authenticate(httpapi.Tokens{API: []string{"data-token"}, Admin: []string{"admin-token"}},
		[]string{"/healthz"}, []string{"/plugins"})(ok)
	open := httpapi.Authenticate(httpapi.Tokens{}, nil, []string{"/plugins"})(ok)
	tests := []struct {
		name, path, token string
		handler           http.Handler
		want              int
	}{
		{"public without token", "/healthz", "", h, 200},
		{"data without token", "/triggers", "", h, 401},
		{"data with wrong token", "/triggers", "nope", h, 401},
		{"data with data token", "/triggers/x", "data-token", h, 200},
		{"data with admin token", "/data/batch", "admin-token", h, 200},
		{"operator without token", "/plugins", "", h, 401},
		{"operator with data token", "/plugins/riffyn/restart", "data-token", h, 403},
		{"operator with admin token", "/plugins", "admin-token", h, 200},
		{"prefix is not a path segment", "/pluginsx", "data-token", h, 200},
		{"no tokens configured", "/plugins", "", open, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d", rec.Code, tt.want)
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}
