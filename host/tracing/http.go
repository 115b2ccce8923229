package tracing

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Middleware traces each request a router serves: a server span named
// after the method and the route's template ("POST /triggers/{uuid}"),
// child of the caller's traceparent when the request carries one. With p
// Disabled it only reads the caller's traceparent into the request's
// context, so that what the request stores carries it on.
func (p *Provider) Middleware() mux.MiddlewareFunc {
	if !p.enabled {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("traceparent") != "" {
					r = r.WithContext(propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	route := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tpl := template(r); tpl != "" {
				trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", tpl))
			}
			next.ServeHTTP(w, r)
		})
	}
	traced := otelhttp.NewMiddleware("http",
		otelhttp.WithTracerProvider(p.TracerProvider),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if tpl := template(r); tpl != "" {
				return r.Method + " " + tpl
			}
			return r.Method
		}))
	return func(next http.Handler) http.Handler { return traced(route(next)) }
}

// untraced are the paths polled by machines and the status page, which
// would fill a tracing backend with traces of nothing: health checks, the
// metrics scrape and the status page's own reads.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/status": true, "/status/series": true}

// template is the path template of the route r matched, its variables'
// patterns left out ("/data/{id}" for "/data/{id:[0-9]+}"), or "" if none.
func template(r *http.Request) string {
	route := mux.CurrentRoute(r)
	if route == nil {
		return ""
	}
	tpl, err := route.GetPathTemplate()
	if err != nil {
		return ""
	}
	var b strings.Builder
	depth, skipping := 0, false
	for _, c := range tpl {
		switch {
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				skipping = false
			}
		case c == ':' && depth == 1:
			skipping = true
		}
		if !skipping || (c == '}' && depth == 0) {
			b.WriteRune(c)
		}
	}
	return b.String()
}
