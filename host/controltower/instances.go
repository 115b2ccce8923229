package controltower

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/poll"
	"github.com/routinglayer/routing/host/publisher"
	"github.com/routinglayer/routing/host/store"
)

// serviceName is the control-tower's name in the instances table, its logs
// and its status page.
const serviceName = "control-tower"

// Heartbeats: every heartbeatInterval an instance records that it is
// alive; /status lists those seen within liveWindow (three heartbeats).
// Rows of instances gone for pruneAge are deleted when an instance
// starts.
const (
	heartbeatInterval = 5 * time.Second
	liveWindow        = 3 * heartbeatInterval
	pruneAge          = 24 * time.Hour
)

// AMQPURLs are the broker nodes of AMQP_URL, a comma-separated list.
func (c Config) AMQPURLs() []string {
	parts := strings.Split(c.AMQPURL, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// validateAMQPURLs checks every node of AMQP_URL and names the first bad
// one, its password hidden.
func (c Config) validateAMQPURLs() error {
	nodes := c.AMQPURLs()
	for i, n := range nodes {
		if n == "" {
			return fmt.Errorf("AMQP_URL: node %d of %d is empty: want comma-separated amqp://user:password@host:port/vhost", i+1, len(nodes))
		}
		if u, err := url.Parse(n); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Hostname() == "" {
			return fmt.Errorf("AMQP_URL: node %d of %d, %q: want amqp://user:password@host:port/vhost", i+1, len(nodes), publisher.Redact(n))
		}
	}
	return nil
}

// heartbeat keeps this instance's row in the instances table.
type heartbeat struct {
	store   *store.Store
	id      string
	started time.Time
	log     hclog.Logger
}

// start records the instance and forgets instances long gone.
func (h *heartbeat) start(ctx context.Context) error {
	if err := h.store.PruneInstances(ctx, serviceName, pruneAge); err != nil {
		h.log.Warn("could not prune the instances table", "error", err)
	}
	return h.store.Heartbeat(ctx, serviceName, h.id, h.started)
}

// run beats every heartbeatInterval until ctx ends, then removes the
// instance's row.
func (h *heartbeat) run(ctx context.Context) {
	poll.Every(ctx, heartbeatInterval, func() bool {
		if err := h.store.Heartbeat(ctx, serviceName, h.id, h.started); err != nil && ctx.Err() == nil {
			h.log.Warn("heartbeat failed", "error", err)
		}
		return true
	})
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.store.RemoveInstance(rctx, serviceName, h.id); err != nil {
		h.log.Warn("could not remove this instance from the instances table", "error", err)
	}
}

// instanceStatus is one live instance in /status.
type instanceStatus struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"startedAt"`
	LastSeen  time.Time `json:"lastSeen"`
	// OutboxClaims is how many outbox entries the instance has claimed:
	// the batch it is publishing.
	OutboxClaims int `json:"outboxClaims"`
	// Watchers are the watcher plugins whose lease the instance holds:
	// those it runs.
	Watchers []string `json:"watchers"`
}

// liveInstances lists the instances seen within liveWindow and what each
// holds.
func liveInstances(ctx context.Context, st *store.Store) ([]instanceStatus, error) {
	list, err := st.Instances(ctx, serviceName, liveWindow)
	if err != nil {
		return nil, err
	}
	held, err := st.Holdings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]instanceStatus, len(list))
	for i, in := range list {
		out[i] = instanceStatus{
			ID: in.ID, StartedAt: in.StartedAt, LastSeen: in.LastSeen,
			OutboxClaims: held.OutboxClaims[in.ID],
			Watchers:     append([]string{}, held.WatcherLeases[in.ID]...),
		}
	}
	return out, nil
}
