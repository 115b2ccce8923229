package towerclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/towerclient"
)

func TestTrigger(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/triggers/known":
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"uuid":"known","apiVersion":"OT-2/v1","protocol":"P","plate":{"rows":2,"columns":1},"spec":[{},{}],
				"metadata":{"source":"riffyn","spec":{"runId":"r1"}},"createdAt":"2026-11-24T10:00:00Z","source":"watcher:riffyn","status":"published"}`))
		case "/triggers/broken":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := towerclient.New(srv.URL+"/", "tok")
	ctx := context.Background()

	tr, err := c.Trigger(ctx, "known")
	if err != nil || tr.UUID != "known" || tr.Plate.Wells() != 2 || tr.Metadata.Source != "riffyn" || tr.Source != "watcher:riffyn" || tr.Status != "published" {
		t.Fatalf("trigger: %+v %v", tr, err)
	}
	if _, err := c.Trigger(ctx, "unknown"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := c.Trigger(ctx, "broken"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("502: %v", err)
	}
	if _, err := towerclient.New("http://127.0.0.1:1", "").Trigger(ctx, "x"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}
}
