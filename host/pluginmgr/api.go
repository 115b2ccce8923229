package pluginmgr

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/routinglayer/routing/host/httpapi"
)

// commandTimeout bounds how long an operator request waits for a plugin's
// supervisor to take its command (it may be in the middle of a launch).
const commandTimeout = 30 * time.Second

// Routes mounts the operator API on r:
//
//	GET  /plugins                  every plugin's status, and skipped files
//	GET  /plugins/{name}           one plugin's status
//	POST /plugins/{name}/restart   restart now (also from failed)
//	POST /plugins/{name}/stop      stop until started again
//	POST /plugins/{name}/start     start a stopped or failed plugin
//	POST /plugins/rescan           rescan the plugins directory now
func (m *Manager) Routes(r *mux.Router) {
	r.HandleFunc("/plugins", m.handleList).Methods(http.MethodGet)
	r.HandleFunc("/plugins/rescan", m.handleRescan).Methods(http.MethodPost)
	r.HandleFunc("/plugins/{name}", m.handleGet).Methods(http.MethodGet)
	r.HandleFunc("/plugins/{name}/{action:restart|stop|start}", m.handleAction).Methods(http.MethodPost)
}

type listResponse struct {
	Plugins []Status  `json:"plugins"`
	Skipped []Skipped `json:"skipped"`
}

func (m *Manager) handleList(w http.ResponseWriter, _ *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, listResponse{Plugins: m.List(), Skipped: m.Skipped()})
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	st, err := m.Get(mux.Vars(r)["name"])
	if err != nil {
		httpapi.WriteProblem(w, r, http.StatusNotFound, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

func (m *Manager) handleAction(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	op := map[string]func(context.Context, string) error{
		"restart": m.Restart, "stop": m.Stop, "start": m.Start,
	}[vars["action"]]
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	switch err := op(ctx, vars["name"]); {
	case errors.Is(err, ErrUnknownPlugin):
		httpapi.WriteProblem(w, r, http.StatusNotFound, err.Error())
	case err != nil:
		httpapi.WriteProblem(w, r, http.StatusServiceUnavailable, "the plugin's supervisor did not take the command: "+err.Error())
	default:
		st, _ := m.Get(vars["name"])
		httpapi.WriteJSON(w, http.StatusAccepted, st)
	}
}

func (m *Manager) handleRescan(w http.ResponseWriter, r *http.Request) {
	if err := m.Rescan(); err != nil {
		httpapi.WriteProblem(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	m.handleList(w, r)
}
