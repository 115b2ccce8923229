// Command robot-sim is a simulated OT-2 robot: it consumes the protocol
// triggers bound to it from RabbitMQ and posts one data row per well to
// the data-gateway. See examples/servicelayer.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/routinglayer/routing/examples/servicelayer"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("program", "robot-sim")
	cfg, err := servicelayer.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "robot-sim:", err)
		os.Exit(2)
	}
	robot, err := servicelayer.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "robot-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("robot-sim starting", "binding", cfg.Binding, "queue", cfg.Queue, "gateway", cfg.GatewayURL)
	if err := robot.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "robot-sim:", err)
		os.Exit(1)
	}
}
