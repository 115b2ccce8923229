package testkit_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
)

// fakeTower serves the control-tower's OpenAPI document and, on the
// other paths, whatever answers holds.
func fakeTower(t *testing.T, answers map[string]func(http.ResponseWriter)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(controltower.OpenAPI)
			return
		}
		if a, ok := answers[r.Method+" "+r.URL.Path]; ok {
			a(w)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func jsonAnswer(status int, contentType, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// The check can fail: answers a service's document does not allow are
// refused by the tests' client, and those it allows pass.
func TestAnswersThatBreakTheOpenAPIDocumentFail(t *testing.T) {
	base := fakeTower(t, map[string]func(http.ResponseWriter){
		"GET /healthz":          jsonAnswer(200, "application/json", `{"status":"ok"}`),
		"GET /readyz":           jsonAnswer(200, "application/json", `{"store":"ok","broker":"ok"}`),
		"GET /triggers/abc":     jsonAnswer(404, "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"detail":"no trigger with uuid \"abc\""}`),
		"GET /triggers/extra":   jsonAnswer(200, "application/json", `{"uuid":"extra","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"createdAt":"2026-01-02T03:04:05Z","source":"http","status":"pending","surprise":true}`),
		"GET /triggers/status":  jsonAnswer(200, "application/json", `{"uuid":"status","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":{"a":1},"createdAt":"2026-01-02T03:04:05Z","source":"http","status":"lost"}`),
		"GET /triggers/teapot":  jsonAnswer(418, "application/problem+json", `{"type":"about:blank","title":"I'm a teapot","status":418}`),
		"GET /triggers/text":    jsonAnswer(404, "text/html", `<p>not found</p>`),
		"POST /triggers/x/stop": jsonAnswer(200, "application/json", `{}`),
		"GET /status":           jsonAnswer(200, "application/json", `{"service":"control-tower","summary":{"pendingTriggers":-1,"brokerConnected":true,"brokerBlocked":false,"instance":"a","instances":[]}}`),
		"POST /triggers":        jsonAnswer(422, "application/problem+json", `{"type":"about:blank","title":"Unprocessable Entity","status":422,"errors":[{"field":"apiVersion"}]}`),
	})
	for _, c := range []struct {
		method, path string
		wrong        string // "" when the answer is right
	}{
		{"GET", "/healthz", ""},
		{"GET", "/readyz", ""},
		{"GET", "/triggers/abc", ""},
		{"GET", "/nowhere", ""}, // the router's 404 for a path it does not serve
		{"GET", "/triggers/extra", "surprise"},
		{"GET", "/triggers/status", "lost"},
		{"GET", "/triggers/teapot", "status is not supported"},
		{"GET", "/triggers/text", "text/html"},
		{"POST", "/triggers/x/stop", "no such operation"},
		{"GET", "/status", "pendingTriggers"},
		{"POST", "/triggers", "reason"},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(`{}`))
		resp, err := testkit.Client.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		if err != nil {
			t.Logf("%s %s: %v", c.method, c.path, err)
		}
		switch {
		case c.wrong == "" && err != nil:
			t.Errorf("%s %s: a right answer was refused: %v", c.method, c.path, err)
		case c.wrong != "" && err == nil:
			t.Errorf("%s %s: a wrong answer (%s) passed the check", c.method, c.path, c.wrong)
		case c.wrong != "" && !strings.Contains(err.Error(), c.wrong):
			t.Errorf("%s %s: the error does not say what is wrong (%q): %v", c.method, c.path, c.wrong, err)
		}
	}
}

// Servers without an OpenAPI document (a test's fakes) are not checked.
func TestServersWithoutADocumentAreNotChecked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	if r := testkit.Call(t, http.MethodGet, srv.URL+"/healthz", ""); r.Status != http.StatusTeapot {
		t.Fatalf("status %d", r.Status)
	}
}

func TestTheDocumentsLoadAsOpenAPI31(t *testing.T) {
	for name, doc := range map[string][]byte{"control-tower": controltower.OpenAPI, "data-gateway": datagateway.OpenAPI} {
		if !strings.Contains(string(doc[:200]), `"openapi": "3.1.0"`) {
			t.Errorf("%s: not an OpenAPI 3.1.0 document", name)
		}
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		if err := testkit.CheckAnswer(doc, req, 200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"status":"ok"}`)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
