package server

import (
	"net/http"
	"slices"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/metrics"
)

// Paths open without a token, and paths that need an operator token.
var (
	PublicPaths   = []string{"/", "/healthz", "/readyz", "/openapi.json"}
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
// httpapi.Origins), and admits the rest by tokens: the health endpoints,
// the status page (which holds no data) and the OpenAPI document are
// public, the operator API, dead letters and metrics need an admin token,
// everything else a data or admin token. With no token configured it warns that everything is open.
// The outer middlewares run first, around all of that (tracing).
func NewRouter(access Access, reg prometheus.Registerer, log hclog.Logger, outer ...mux.MiddlewareFunc) *mux.Router {
	router := mux.NewRouter()
	router.Use(outer...)
	router.Use(metrics.NewHTTP(reg).Middleware)
	router.Use(access.Origins.Middleware)
	router.Use(httpapi.Authenticate(access.Tokens, PublicPaths, OperatorPaths))
	if !access.Tokens.Enabled() {
		log.Warn("no API_TOKENS or ADMIN_TOKENS: every endpoint is open to whoever can reach " + access.Listen)
	}
	return router
}

// OpenAPIRoute mounts GET /openapi.json, which serves doc, the service's
// OpenAPI document (JSON), as it is; an empty doc mounts nothing.
func OpenAPIRoute(r *mux.Router, doc []byte) {
	if len(doc) == 0 {
		return
	}
	r.HandleFunc("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}).Methods(http.MethodGet)
}

// Operations lists what r serves as "<METHOD> <path template>", e.g.
// "GET /triggers/{uuid}", sorted; a route for several methods is listed
// once per method.
func Operations(r *mux.Router) []string {
	var out []string
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	slices.Sort(out)
	return out
}
