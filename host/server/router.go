package server

import (
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/metrics"
)

// Paths open without a token, and paths that need an operator token.
var (
	PublicPaths   = []string{"/", "/healthz", "/readyz"}
	OperatorPaths = []string{"/plugins", "/deadletters", "/metrics", "/status"}
)

// NewRouter returns a router that counts requests in reg and admits them
// by tokens: the health endpoints and the status page (which holds no
// data) are public, the operator API, dead letters and metrics need an
// admin token, everything else a data or admin token. With no token
// configured it warns that everything is open.
func NewRouter(tokens httpapi.Tokens, reg prometheus.Registerer, host string, log hclog.Logger) *mux.Router {
	router := mux.NewRouter()
	router.Use(metrics.NewHTTP(reg).Middleware)
	router.Use(httpapi.Authenticate(tokens, PublicPaths, OperatorPaths))
	if !tokens.Enabled() {
		log.Warn("no API_TOKENS or ADMIN_TOKENS: every endpoint is open to whoever can reach " + host)
	}
	return router
}
