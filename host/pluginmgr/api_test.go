package pluginmgr_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/pluginmgr"
)

func TestOperatorAPI(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "watcher-api")
	must(t, os.WriteFile(filepath.Join(dir, "watcher-notexec"), nil, 0o644))
	h := startManager(t, dir, []string{"PATH=" + os.Getenv("PATH"), "PLUGIN_API_TOKEN=very-secret-value"}, nil)
	first := h.waitState(t, "api", pluginmgr.StateRunning, nil)

	r := mux.NewRouter()
	h.m.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	call := func(method, path string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		must(t, err)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}

	code, _, body := call(http.MethodGet, "/plugins")
	if code != http.StatusOK || strings.Contains(body, "very-secret-value") {
		t.Fatalf("GET /plugins: %d, secret shown: %v\n%s", code, strings.Contains(body, "very-secret-value"), body)
	}
	var list struct {
		Plugins []pluginmgr.Status
		Skipped []pluginmgr.Skipped
	}
	must(t, json.Unmarshal([]byte(body), &list))
	if len(list.Plugins) != 1 || list.Plugins[0].Name != "api" || list.Plugins[0].State != pluginmgr.StateRunning ||
		list.Plugins[0].Info == nil || list.Plugins[0].Info.Version != "1.0.0" {
		t.Fatalf("plugins: %+v", list.Plugins)
	}
	if len(list.Skipped) != 1 || list.Skipped[0].File != "watcher-notexec" {
		t.Fatalf("skipped: %+v", list.Skipped)
	}
	var token pluginmgr.ConfigValue
	for _, c := range list.Plugins[0].Config {
		if c.Name == "TOKEN" {
			token = c
		}
	}
	if token.Variable != "PLUGIN_API_TOKEN" || !token.Set || !token.Secret || token.Value != "********" {
		t.Fatalf("secret config not masked: %+v", token)
	}

	code, ctype, body := call(http.MethodGet, "/plugins/nope")
	if code != http.StatusNotFound || ctype != "application/problem+json" || !strings.Contains(body, `"status":404`) {
		t.Fatalf("GET unknown: %d %s %s", code, ctype, body)
	}
	if code, _, _ := call(http.MethodPost, "/plugins/nope/restart"); code != http.StatusNotFound {
		t.Fatalf("restart unknown: %d", code)
	}
	if code, _, _ := call(http.MethodPost, "/plugins/api/explode"); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Fatalf("unknown action: %d", code)
	}

	if code, _, body := call(http.MethodPost, "/plugins/api/restart"); code != http.StatusAccepted {
		t.Fatalf("restart: %d %s", code, body)
	}
	again := h.waitState(t, "api", pluginmgr.StateRunning, func(st pluginmgr.Status) bool { return st.PID != first.PID })
	if again.Restarts != 1 {
		t.Fatalf("restarts after operator restart = %d, want 1", again.Restarts)
	}
	if code, _, _ := call(http.MethodPost, "/plugins/api/stop"); code != http.StatusAccepted {
		t.Fatalf("stop: %d", code)
	}
	h.waitState(t, "api", pluginmgr.StateStopped, nil)
	if code, _, body := call(http.MethodPost, "/plugins/rescan"); code != http.StatusOK || !strings.Contains(body, `"stopped"`) {
		t.Fatalf("rescan: %d %s", code, body)
	}
}
