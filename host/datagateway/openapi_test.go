package datagateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/spool"
)

// The document is served without a token, is the one in the repository,
// lists exactly the routes the service serves, and every operation's
// answers match it: testkit's client checks each answer it receives
// against the document of the service that gave it.
func TestOpenAPIDocumentCoversEveryRouteAndAnswer(t *testing.T) {
	const dataToken, adminToken = "data-token-0123456789", "admin-token-0123456789"
	e := newEnv(t, "API_TOKENS="+dataToken, "ADMIN_TOKENS="+adminToken, "MAX_BODY_BYTES=65536")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out, "PLUGIN_PROBE_PERMANENT_IF_EXISTS=/")
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")

	doc := call(t, http.MethodGet, base+"/openapi.json", "")
	if doc.Status != http.StatusOK || doc.Header.Get("Content-Type") != "application/json" || !bytes.Equal(doc.Body, datagateway.OpenAPI) {
		t.Fatalf("GET /openapi.json without a token: %d %s, want 200 and host/datagateway/openapi.json", doc.Status, doc.Header.Get("Content-Type"))
	}
	testkit.CheckRoutesDocumented(t, datagateway.OpenAPI, svc.Operations())

	send := func(method, path, token, contentType, body string) testkit.Reply {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		must(t, err)
		req.Header.Set("Content-Type", contentType)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return testkit.Send(t, req)
	}
	var acc spool.Accepted
	r := send("POST", "/data", dataToken, "application/json", `{"uuid":"openapi-1","row":{"index":0,"data":{"odMeasured":0.42}}}`)
	r.JSON(t, &acc)
	// The probe dead-letters every push (PERMANENT_IF_EXISTS names a file
	// that exists): there is a dead letter to list and retry.
	waitFor(t, 30*time.Second, "the dead letter", func() bool {
		var dl struct{ Deadletters []spool.TaskStatus }
		send("GET", "/deadletters", adminToken, "", "").JSON(t, &dl)
		return len(dl.Deadletters) == 1
	})
	for _, c := range []struct {
		method, path, token, contentType, body string
		want                                   int
	}{
		{"GET", "/", "", "", "", 200},
		{"GET", "/healthz", "", "", "", 200},
		{"GET", "/readyz", "", "", "", 200},
		{"GET", "/metrics", adminToken, "", "", 200},
		{"GET", "/status", adminToken, "", "", 200},
		{"GET", "/status/series", "", "", "", 401},
		{"GET", "/status/series", dataToken, "", "", 403},
		{"GET", "/status/series", adminToken, "", "", 200},
		{"GET", "/plugins", adminToken, "", "", 200},
		{"GET", "/plugins/probe", adminToken, "", "", 200},
		{"POST", "/plugins/rescan", adminToken, "", "", 200},
		{"GET", "/plugins/nope", adminToken, "", "", 404},
		{"POST", "/plugins/nope/restart", adminToken, "", "", 404},
		{"POST", "/plugins/nope/stop", adminToken, "", "", 404},
		{"POST", "/plugins/nope/start", adminToken, "", "", 404},
		{"POST", "/data/batch", dataToken, "application/json", `{"uuid":"openapi-1","rows":[{"index":1,"data":{"a":1}},{"data":{"a":null}}]}`, 202},
		{"POST", "/data", dataToken, "application/json", `{"uuid":"openapi-1","row":{"data":{"Bad_Key":1}}}`, 422},
		{"POST", "/data", dataToken, "application/json", `{"uuid":`, 400},
		{"POST", "/data", dataToken, "text/plain", `{}`, 415},
		{"POST", "/data/batch", dataToken, "application/json", `{"uuid":"u","rows":[` + strings.Repeat(`{"data":{"a":1}},`, 5000) + `{"data":{"a":1}}]}`, 413},
		{"GET", fmt.Sprintf("/data/%d", acc.ID), dataToken, "", "", 200},
		{"GET", "/data/999999", dataToken, "", "", 404},
		{"GET", "/data/abc", dataToken, "", "", 404},
		{"GET", "/deadletters?pusher=probe", adminToken, "", "", 200},
		{"POST", "/deadletters/999999/retry", adminToken, "", "", 404},
	} {
		if got := send(c.method, c.path, c.token, c.contentType, c.body); got.Status != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, got.Status, c.want, got.Body)
		}
	}
	var dl struct{ Deadletters []spool.TaskStatus }
	send("GET", "/deadletters", adminToken, "", "").JSON(t, &dl)
	if r := send("POST", fmt.Sprintf("/deadletters/%d/retry", dl.Deadletters[0].ID), adminToken, "", ""); r.Status != http.StatusAccepted {
		t.Errorf("retry: %d %s", r.Status, r.Body)
	}
	for _, action := range []string{"stop", "start", "restart"} {
		if r := send("POST", "/plugins/probe/"+action, adminToken, "", ""); r.Status != http.StatusAccepted {
			t.Errorf("%s: %d %s", action, r.Status, r.Body)
		}
	}
}
