package tracing

import (
	"net/http"

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
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if tpl := template(r); tpl != "" {
				return r.Method + " " + tpl
			}
			return r.Method
		}))
	return func(next http.Handler) http.Handler { return traced(route(next)) }
}

// template is the path template of the route r matched, "" if none.
func template(r *http.Request) string {
	if route := mux.CurrentRoute(r); route != nil {
		if tpl, err := route.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return ""
}
