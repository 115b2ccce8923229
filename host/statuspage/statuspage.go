// Package statuspage serves a service's status page: one self-contained
// HTML page (embedded, no external assets) that reads the service's JSON
// APIs with the operator's token and shows the plugins, with Restart
// buttons, the service's backlog (recent triggers on the control-tower,
// dead letters with Retry buttons on the data-gateway) and charts of the
// last 15 minutes, drawn from the samples a Series keeps.
package statuspage

import (
	"bytes"
	"context"
	_ "embed"
	"html/template"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/httpapi"
)

//go:embed index.html
var indexHTML string

var page = template.Must(template.New("index").Parse(indexHTML))

// Summary returns the service's figures for GET /status.
type Summary func(ctx context.Context) (any, error)

// Routes mounts GET / (the page; it holds no data, so it needs no token),
// GET /status (the service's summary) and GET /status/series (series'
// samples, see SeriesView), operator endpoints both.
func Routes(r *mux.Router, service string, summary Summary, series *Series) {
	var buf bytes.Buffer
	if err := page.Execute(&buf, struct{ Service string }{service}); err != nil {
		panic("statuspage: " + err.Error()) // the template is compiled in
	}
	body := buf.Bytes()
	r.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// Everything the page needs is inline; it talks only to its origin.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	}).Methods(http.MethodGet)
	r.HandleFunc("/status", httpapi.Handle(func(w http.ResponseWriter, req *http.Request) error {
		s, err := summary(req.Context())
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, struct {
			Service string `json:"service"`
			Summary any    `json:"summary"`
		}{service, s})
		return nil
	})).Methods(http.MethodGet)
	r.HandleFunc("/status/series", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, series.View())
	}).Methods(http.MethodGet)
}
