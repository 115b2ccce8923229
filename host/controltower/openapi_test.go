package controltower_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
)

// The document is served without a token, is the one in the repository,
// lists exactly the routes the service serves, and every operation's
// answers match it: testkit's client checks each answer it receives
// against the document of the service that gave it.
func TestOpenAPIDocumentCoversEveryRouteAndAnswer(t *testing.T) {
	const dataToken, adminToken = "data-token-0123456789", "admin-token-0123456789"
	cfg := testConfig(t, newProxy(t).url())
	cfg.APITokens, cfg.AdminTokens = []string{dataToken}, []string{adminToken}
	svc, base := start(t, cfg)

	doc := call(t, http.MethodGet, base+"/openapi.json", nil)
	if doc.Status != http.StatusOK || doc.Header.Get("Content-Type") != "application/json" || !bytes.Equal(doc.Body, controltower.OpenAPI) {
		t.Fatalf("GET /openapi.json without a token: %d %s, want 200 and host/controltower/openapi.json", doc.Status, doc.Header.Get("Content-Type"))
	}
	testkit.CheckRoutesDocumented(t, controltower.OpenAPI, svc.Operations())
	if r := call(t, http.MethodGet, base+"/readyz", nil); r.Status != http.StatusServiceUnavailable && r.Status != http.StatusOK {
		t.Fatalf("GET /readyz: %d", r.Status)
	}
	waitFor(t, 10*time.Second, "the broker connection", func() bool {
		return call(t, http.MethodGet, base+"/readyz", nil).Status == http.StatusOK
	})

	trigger := `{"uuid":"openapi-1","apiVersion":"OT-2/v1alpha1","protocol":"P","spec":[{"v":1},{"v":2}],"plate":{"rows":2,"columns":1}}`
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/", "", "", 200},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", adminToken, "", 200},
		{"GET", "/status", adminToken, "", 200},
		{"GET", "/status/series", "", "", 401},
		{"GET", "/status/series", dataToken, "", 403},
		{"GET", "/status/series", adminToken, "", 200},
		{"GET", "/plugins", adminToken, "", 200},
		{"POST", "/plugins/rescan", adminToken, "", 200},
		{"GET", "/plugins/nope", adminToken, "", 404},
		{"POST", "/plugins/nope/restart", adminToken, "", 404},
		{"POST", "/plugins/nope/stop", adminToken, "", 404},
		{"POST", "/plugins/nope/start", adminToken, "", 404},
		{"POST", "/triggers", dataToken, trigger, 201},
		{"POST", "/triggers", dataToken, trigger, 200},
		{"POST", "/triggers", dataToken, strings.Replace(trigger, `"P"`, `"Q"`, 1), 409},
		{"POST", "/triggers", dataToken, `{"apiVersion":"OT-2","protocol":"P","spec":{}}`, 422},
		{"POST", "/triggers", dataToken, `{"apiVersion":`, 400},
		{"POST", "/triggers", dataToken, strings.Repeat(" ", 70000) + trigger, 413},
		{"GET", "/triggers?limit=1", dataToken, "", 200},
		{"GET", "/triggers?limit=0&status=lost", dataToken, "", 400},
		{"GET", "/triggers/openapi-1", dataToken, "", 200},
		{"GET", "/triggers/nope", dataToken, "", 404},
		{"POST", "/triggers/openapi-1/republish", dataToken, "", 202},
		{"POST", "/triggers/nope/republish", dataToken, "", 404},
	} {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		must(t, err)
		req.Header.Set("Content-Type", "application/json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if got := testkit.Send(t, req); got.Status != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, got.Status, c.want, got.Body)
		}
	}
	req, err := http.NewRequest(http.MethodPost, base+"/triggers", strings.NewReader(trigger))
	must(t, err)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+dataToken)
	if got := testkit.Send(t, req); got.Status != http.StatusUnsupportedMediaType {
		t.Errorf("POST /triggers as text/plain: %d, want 415", got.Status)
	}
}
