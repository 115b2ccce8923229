// Package server runs a service's HTTP server: it listens, serves the
// health endpoints beside the service's routes, and shuts down gracefully
// when its context ends.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/metrics"
)

// Check reports whether one dependency of the service is ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Server is a listening HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	tls bool
	log hclog.Logger
}

// Options are what a server serves beside the service's routes.
type Options struct {
	// Checks make up GET /readyz.
	Checks []Check
	// Metrics, when set, is served on GET /metrics.
	Metrics *prometheus.Registry
	// TLSCertFile and TLSKeyFile, when both set, make the server speak
	// HTTPS only. The files are read again when they change, so a
	// renewed certificate is used without a restart.
	TLSCertFile, TLSKeyFile string
}

// Listen binds addr (port 0 picks a free port) and prepares a server for
// router, adding GET /healthz (the process is alive), GET /readyz (every
// check passes; a failing one is named) and GET /metrics.
func Listen(addr string, router *mux.Router, opts Options, log hclog.Logger) (*Server, error) {
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		certs, err := newCertLoader(opts.TLSCertFile, opts.TLSKeyFile, log)
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	router.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	router.HandleFunc("/readyz", readyHandler(opts.Checks)).Methods(http.MethodGet)
	if opts.Metrics != nil {
		router.Handle("/metrics", metrics.Handler(opts.Metrics, log)).Methods(http.MethodGet)
	}
	return &Server{srv: srv, ln: ln, tls: srv.TLSConfig != nil, log: log}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL, http or https.
func (s *Server) URL() string {
	if s.tls {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Serve serves until ctx is done, then stops accepting requests and waits
// up to grace for those in flight.
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func readyHandler(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, code := map[string]string{}, http.StatusOK
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				status[c.Name] = err.Error()
				code = http.StatusServiceUnavailable
				continue
			}
			status[c.Name] = "ok"
		}
		httpapi.WriteJSON(w, code, status)
	}
}
