// Package towerclient is a small client of the control-tower's HTTP API,
// for services and plugins that need a stored trigger.
package towerclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/routinglayer/routing/sdk"
)

// maxTriggerBytes bounds the answer read for one trigger: the plugin
// protocol's message limit (64 MiB), which a trigger passed to a plugin
// must fit in.
const maxTriggerBytes = 64 << 20

// Client talks to one control-tower.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the control-tower at baseURL
// (http://127.0.0.1:8000). token, when set, is sent as a bearer token.
func New(baseURL, token string) *Client {
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		http:  &http.Client{Timeout: 10 * time.Second},
	}
}

// Trigger returns the stored trigger with uuid; an error matching
// sdk.ErrNotFound when the control-tower does not know it, and
// sdk.ErrUnavailable when it cannot be asked.
func (c *Client) Trigger(ctx context.Context, uuid string) (*sdk.StoredTrigger, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/triggers/"+url.PathEscape(uuid), nil)
	if err != nil {
		return nil, fmt.Errorf("get trigger %s: %w", uuid, err)
	}
	req.Header.Set("Accept", "application/json")
	// The control-tower's span of the lookup joins the caller's trace (a
	// delivery's, in the data-gateway).
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get trigger %s: %w: %w", uuid, sdk.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTriggerBytes))
	if err != nil {
		return nil, fmt.Errorf("get trigger %s: %w: %w", uuid, sdk.ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("trigger %s: %w", uuid, sdk.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("get trigger %s: %w: control-tower answered %s", uuid, sdk.ErrUnavailable, resp.Status)
	}
	var t sdk.StoredTrigger
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("decode trigger %s: %w", uuid, err)
	}
	return &t, nil
}
