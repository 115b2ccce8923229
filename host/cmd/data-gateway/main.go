// Command data-gateway runs the routing layer's data plane: it accepts
// data rows from service-layer programs, stores them durably and forwards
// them to every pusher plugin. Configuration comes from the environment;
// see the README.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/datagateway"
	"github.com/routinglayer/routing/host/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "data-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, environ []string) error {
	var cfg datagateway.Config
	if err := config.Load(&cfg, environ); err != nil {
		return err
	}
	cfg.Environ = environ
	log := config.NewLogger("data-gateway", cfg.Common, os.Stderr)
	if cfg.DebugAddr != "" {
		if err := server.ServeDebug(ctx, cfg.DebugAddr, log); err != nil {
			return fmt.Errorf("DEBUG_ADDR=%q: %w", cfg.DebugAddr, err)
		}
	}
	svc, err := datagateway.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Wait()
}
