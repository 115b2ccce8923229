// Command probe is a pusher for the data-gateway's tests. It appends one
// JSON line per delivered row to <OUT>/<instance>.jsonl and misbehaves on
// request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
	"github.com/routinglayer/routing/sdk/serve"
)

type config struct {
	Out               string        `env:"OUT,required"`
	FailTimes         int           `env:"FAIL_TIMES" envDefault:"0"`
	PermanentIfExists string        `env:"PERMANENT_IF_EXISTS"`
	HangIfExists      string        `env:"HANG_IF_EXISTS"`
	Delay             time.Duration `env:"DELAY" envDefault:"0s"`
	// RejectKey makes a Push fail permanently when a row has this data key.
	RejectKey string `env:"REJECT_KEY"`
	// Echo, when set, is a URL each Push POSTs to through OpenTelemetry's
	// HTTP instrumentation, with the Push's context: a destination's view
	// of the trace context a plugin passes on.
	Echo string `env:"ECHO"`
}

type probe struct {
	cfg      config
	instance string
}

// Line is what the probe records per delivered row.
type Line struct {
	UUID    string          `json:"uuid"`
	Index   *int            `json:"index,omitempty"`
	Data    json.RawMessage `json:"data"`
	Attempt int             `json:"attempt"`
	PID     int             `json:"pid"`
	// Batch is how many rows the Push carried.
	Batch int `json:"batch"`
	// Push numbers the pushes this process received, from 1; Bytes is
	// the size of that Push message.
	Push  int64 `json:"push"`
	Bytes int   `json:"bytes"`
	// Traceparent is the W3C trace context the Push's context carried.
	Traceparent string `json:"traceparent,omitempty"`
}

var pushes atomic.Int64

func (p *probe) Info() sdk.Info {
	return sdk.Info{Name: "probe", Version: "1.0.0", Config: &p.cfg}
}

func (p *probe) Start(_ context.Context, host sdk.Host) error {
	p.instance = host.InstanceName()
	return os.MkdirAll(p.cfg.Out, 0o750)
}

func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

func (p *probe) Push(ctx context.Context, req sdk.PushRequest) error {
	if exists(p.cfg.HangIfExists) {
		<-ctx.Done()
		return ctx.Err()
	}
	if exists(p.cfg.PermanentIfExists) {
		return sdk.Permanent(errors.New("permanent failure as asked"))
	}
	for _, r := range req.Rows {
		if _, ok := r.Data.Get(p.cfg.RejectKey); ok && p.cfg.RejectKey != "" {
			return sdk.Permanent(errors.New("a row has the rejected key " + p.cfg.RejectKey))
		}
	}
	if req.Attempt <= p.cfg.FailTimes {
		return fmt.Errorf("failing attempt %d as asked", req.Attempt)
	}
	if p.cfg.Delay > 0 {
		time.Sleep(p.cfg.Delay)
	}
	if p.cfg.Echo != "" {
		if err := echo(ctx, p.cfg.Echo); err != nil {
			return err
		}
	}
	push, size := pushes.Add(1), pluginhost.PushRequestSize(req, nil)
	traceparent, _ := sdk.TraceContext(ctx)
	var b strings.Builder
	for _, r := range req.Rows {
		data, err := r.Data.MarshalJSON()
		if err != nil {
			return sdk.Permanent(err)
		}
		line, _ := json.Marshal(Line{UUID: req.UUID, Index: r.Index, Data: data, Attempt: req.Attempt, PID: os.Getpid(), Batch: len(req.Rows), Push: push, Bytes: size, Traceparent: traceparent})
		b.Write(line)
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(filepath.Join(p.cfg.Out, p.instance+".jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// echo POSTs to url with ctx through otelhttp's transport, as a pusher
// calling its destination would.
func echo(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return sdk.Permanent(err)
	}
	resp, err := (&http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)}).Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func main() { serve.Pusher(&probe{}) }
