// Command control-tower runs the routing layer's control plane: it stores
// protocol triggers from watcher plugins and HTTP clients and publishes
// them to RabbitMQ. Configuration comes from the environment; see the
// README.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "control-tower:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, environ []string) error {
	var cfg controltower.Config
	if err := config.Load(&cfg, environ); err != nil {
		return err
	}
	cfg.Environ = environ
	log := config.NewLogger("control-tower", cfg.Common, os.Stderr)
	if cfg.DebugAddr != "" {
		if err := server.ServeDebug(ctx, cfg.DebugAddr, log); err != nil {
			return fmt.Errorf("DEBUG_ADDR=%q: %w", cfg.DebugAddr, err)
		}
	}
	svc, err := controltower.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Wait()
}
