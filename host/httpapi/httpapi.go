// Package httpapi holds what the services' HTTP APIs share: JSON
// responses, RFC 9457 problem details that name the offending field, the
// one mapping from the host's errors to HTTP statuses (handlers return an
// error; WriteError answers it), reading JSON request bodies (media type,
// encoding, size limit), and the middleware that admits requests (tokens,
// origins, hosts).
package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/routinglayer/routing/sdk"
)

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors names each offending field of a validation failure.
	Errors []sdk.FieldError `json:"errors,omitempty"`
}

// WriteProblem writes a problem response. detail is shown to the client.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	writeProblem(w, Problem{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
	})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
