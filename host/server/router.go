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

// Access is whom a service's router admits.
type Access struct {
	// Tokens are the bearer tokens; none means every endpoint is open.
	Tokens httpapi.Tokens
	// Origins refuses requests from other sites' pages and, while the
	// service is open on loopback, under names that are not loopback.
	Origins httpapi.Origins
	// Listen is the host the service listens on, named in the warning
	// about an open service.
	Listen string
}

// NewRouter returns a router that counts requests in reg, refuses
// requests from other origins (and rebound host names, see
// httpapi.Origins), and admits the rest by tokens: the health endpoints
// and the status page (which holds no data) are public, the operator API,
// dead letters and metrics need an admin token, everything else a data or
// admin token. With no token configured it warns that everything is open.
func NewRouter(access Access, reg prometheus.Registerer, log hclog.Logger) *mux.Router {
	router := mux.NewRouter()
	router.Use(metrics.NewHTTP(reg).Middleware)
	router.Use(access.Origins.Middleware)
	router.Use(httpapi.Authenticate(access.Tokens, PublicPaths, OperatorPaths))
	if !access.Tokens.Enabled() {
		log.Warn("no API_TOKENS or ADMIN_TOKENS: every endpoint is open to whoever can reach " + access.Listen)
	}
	return router
}
