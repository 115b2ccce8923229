// Package servicelayer is an example service-layer program written with
// the Go kit (sdk/client): a simulated OT-2 robot that consumes the
// protocol triggers bound to it, "runs" each (it logs it and waits a
// moment per well), and posts one data row per well back to the
// data-gateway (one row for a trigger whose spec is a single object).
// Run it with the services (`make` does) and post an OT-2 trigger: the
// rows appear in pusher-jsonl's output, data/rows/<uuid>.jsonl.
package servicelayer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/routinglayer/routing/sdk/client"
)

// Config is the robot's configuration; Load reads it from the
// environment.
type Config struct {
	// AMQPURL is the broker: one node or several comma-separated
	// (AMQP_URL, as the control-tower takes it).
	AMQPURL string
	// Exchange is the control-tower's AMQP_EXCHANGE.
	Exchange string
	// Queue is the robot's durable queue (ROBOT_QUEUE).
	Queue string
	// Binding selects the triggers (ROBOT_BINDING): every OT-2 v1alpha1
	// trigger by default.
	Binding string
	// GatewayURL, GatewayToken and GatewayCAFile reach the data-gateway
	// (DATA_GATEWAY_URL, DATA_GATEWAY_TOKEN: one of its API_TOKENS,
	// DATA_GATEWAY_CA_FILE: a PEM bundle for https).
	GatewayURL, GatewayToken, GatewayCAFile string
	// StepDelay is the time the simulated robot spends per well
	// (ROBOT_STEP_DELAY).
	StepDelay time.Duration
}

// Load reads the configuration from getenv (os.Getenv), with the
// defaults of `make`'s services. The error names the variable.
func Load(getenv func(string) string) (Config, error) {
	or := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	c := Config{
		AMQPURL:       or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		Exchange:      or("AMQP_EXCHANGE", "triggers"),
		Queue:         or("ROBOT_QUEUE", "robot-sim"),
		Binding:       or("ROBOT_BINDING", "OT-2.v1alpha1.#"),
		GatewayURL:    or("DATA_GATEWAY_URL", "http://127.0.0.1:8001"),
		GatewayToken:  getenv("DATA_GATEWAY_TOKEN"),
		GatewayCAFile: getenv("DATA_GATEWAY_CA_FILE"),
	}
	d, err := time.ParseDuration(or("ROBOT_STEP_DELAY", "10ms"))
	if err != nil || d < 0 {
		return Config{}, fmt.Errorf("ROBOT_STEP_DELAY=%q: want a duration such as 10ms", getenv("ROBOT_STEP_DELAY"))
	}
	c.StepDelay = d
	if _, err := client.Nodes(c.AMQPURL); err != nil {
		return Config{}, fmt.Errorf("AMQP_URL: %w", err)
	}
	return c, nil
}

// Robot is the simulated robot.
type Robot struct {
	cfg  Config
	rows *client.Rows
	log  *slog.Logger
}

// New returns a robot posting its rows to the gateway cfg names.
func New(cfg Config, log *slog.Logger) (*Robot, error) {
	rows, err := client.NewRows(client.RowsOptions{
		URL: cfg.GatewayURL, Token: cfg.GatewayToken, CAFile: cfg.GatewayCAFile, Logger: log,
		GiveUpAfter: 10 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	return &Robot{cfg: cfg, rows: rows, log: log}, nil
}

// Run consumes triggers until ctx ends.
func (r *Robot) Run(ctx context.Context) error {
	defer r.rows.Close(context.Background())
	return client.Consume(ctx, r.cfg.AMQPURL, r.cfg.Binding, r.Handle, client.ConsumeOptions{
		Queue: r.cfg.Queue, Exchange: r.cfg.Exchange, Logger: r.log,
	})
}

// Handle runs one trigger and posts its rows under an Idempotency-Key
// made of the queue and the trigger's uuid: a trigger delivered again
// after a crash between the post and the acknowledgement is stored once.
func (r *Robot) Handle(ctx context.Context, m client.Message) error {
	t := m.Trigger
	r.log.Info("trigger received", "uuid", t.UUID, "apiVersion", t.APIVersion, "protocol", t.Protocol, "delivery", m.Delivery)
	rows, err := Rows(t)
	if err != nil {
		return client.Permanent(err)
	}
	for range rows {
		select {
		case <-time.After(r.cfg.StepDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// One batch per 500 wells (a plate has at most 1000x1000).
	for part, start := 0, 0; start < len(rows); part, start = part+1, start+500 {
		end := min(start+500, len(rows))
		key := r.cfg.Queue + ":" + t.UUID + ":" + strconv.Itoa(part)
		acc, err := r.rows.PostBatch(ctx, key, t.UUID, rows[start:end])
		var refused *client.BatchError
		if errors.As(err, &refused) && refused.Status >= 400 && refused.Status < 500 {
			return client.Permanent(err)
		}
		if err != nil {
			return err
		}
		r.log.Info("rows posted", "uuid", t.UUID, "rows", acc.Rows, "delivery", acc.ID, "pushers", acc.Pushers, "replayed", acc.Replayed)
	}
	return nil
}

var camel = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// Rows are the rows the simulated run of t yields: one per well of an
// array spec (index i, named by the plate when it has one), or one
// without index for an object spec. Each carries the well's scalar spec
// values with camelCase keys, and "completed": true.
func Rows(t client.Trigger) ([]client.Row, error) {
	wells, err := t.Wells()
	if err != nil {
		return nil, err
	}
	object := len(t.Spec) > 0 && t.Spec[0] == '{'
	rows := make([]client.Row, 0, len(wells))
	for i, w := range wells {
		var spec map[string]any
		if err := json.Unmarshal(w, &spec); err != nil {
			return nil, fmt.Errorf("trigger %s: well %d: %w", t.UUID, i, err)
		}
		data := map[string]any{"completed": true, "protocol": t.Protocol}
		for k, v := range spec {
			switch v.(type) {
			case string, float64, bool, nil:
				if camel.MatchString(k) && k != "completed" && k != "protocol" {
					data[k] = v
				}
			}
		}
		row := client.Row{Data: data}
		if !object {
			row.Index = client.Well(i)
			if t.Plate != nil {
				data["well"] = t.Plate.WellName(i)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}
