package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

func TestWriteErrorAnswersByKind(t *testing.T) {
	invalid := &sdk.ValidationError{Fields: []sdk.FieldError{{Field: "uuid", Reason: "is required"}}}
	tests := []struct {
		name       string
		err        error
		status     int
		detail     string
		retryAfter string
		fields     int
	}{
		{"invalid input lists its fields", invalid, 422, invalid.Error(), "", 1},
		{"a store not-found", fmt.Errorf("delivery 7: %w", store.ErrNotFound), 404, "delivery 7: not found", "", 0},
		{"an sdk not-found", sdk.ErrNotFound, 404, "not found", "", 0},
		{"a conflict", fmt.Errorf("%w: uuid x", store.ErrConflict), 409, "conflict: uuid x", "", 0},
		{"too large", sdk.ErrTooLarge, 413, "too large", "", 0},
		{"anything else is the storage failing", errors.New("database is locked"), 503, "storage unavailable: database is locked", "1", 0},
		{"a status of its own", httpapi.Errorf(400, "rows cannot be encoded: %w", errors.New("NaN")), 400, "rows cannot be encoded: NaN", "", 0},
		{"a status of its own keeps the fields", &httpapi.Error{Status: 400, Err: invalid}, 400, invalid.Error(), "", 1},
		{"a retry-after", &httpapi.Error{Status: 429, RetryAfter: 5, Err: errors.New("backlog full")}, 429, "backlog full", "5", 0},
		{"explained, its status kept", httpapi.Explain(store.ErrNotFound, store.ErrNotFound, "no trigger with uuid %q", "u"), 404, `no trigger with uuid "u"`, "", 0},
		{"explained only when of the kind", httpapi.Explain(errors.New("disk full"), store.ErrNotFound, "no trigger"), 503, "storage unavailable: disk full", "1", 0},
		{"wrapped in context still matched", fmt.Errorf("handler: %w", &httpapi.Error{Status: 415, Err: errors.New("not JSON")}), 415, "handler: not JSON", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpapi.Handle(func(http.ResponseWriter, *http.Request) error { return tt.err }).
				ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			var p httpapi.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if rec.Code != tt.status || p.Status != tt.status || p.Detail != tt.detail || p.Instance != "/x" ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("got %d %+v (%s), want %d with detail %q", rec.Code, p, rec.Header().Get("Content-Type"), tt.status, tt.detail)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if len(p.Errors) != tt.fields {
				t.Errorf("fields %v, want %d", p.Errors, tt.fields)
			}
		})
	}
}

func TestHandleWritesNothingMoreOnSuccess(t *testing.T) {
	rec := httptest.NewRecorder()
	httpapi.Handle(func(w http.ResponseWriter, _ *http.Request) error {
		httpapi.WriteJSON(w, http.StatusCreated, map[string]int{"n": 1})
		return nil
	}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", nil))
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}
