package sdk

import (
	"context"
	"log/slog"
)

// Info is how a plugin describes itself.
type Info struct {
	// Name is the implementation's name, e.g. "riffyn". The instance name
	// (from the file name) may differ: one binary can be installed as
	// pusher-archive and pusher-backup.
	Name string
	// Version is the plugin's own version, e.g. "1.2.0".
	Version string
	// Description says in one line what the plugin does.
	Description string
	// Config points to the plugin's configuration struct, which the SDK
	// fills from PLUGIN_<NAME>_* variables before Run or Start (see the
	// package documentation, "Configuration"). Return the same pointer
	// on every call (a field of the plugin, not a new struct): the SDK
	// loads into the pointer it gets. Nil when the plugin takes no
	// configuration.
	Config any
}

// Watcher watches an upstream source and emits protocol triggers.
type Watcher interface {
	// Info describes the plugin. It is called before the configuration is
	// loaded and must not depend on it.
	Info() Info
	// Run watches until ctx is done, emitting triggers through host. It
	// returns nil when ctx is done; an error matching ErrConfig fails the
	// plugin until an operator restarts it, and any other error is a
	// crash the host recovers from by restarting the plugin.
	Run(ctx context.Context, host WatcherHost) error
}

// Pusher forwards data rows to one upstream destination.
type Pusher interface {
	// Info describes the plugin. It is called before the configuration is
	// loaded and must not depend on it.
	Info() Info
	// Start is called once per process, with the configuration loaded,
	// before the first Push. An error matching ErrConfig fails the plugin
	// until an operator restarts it; any other error is a crash (the
	// process is restarted with backoff).
	Start(ctx context.Context, host Host) error
	// Push delivers rows to the destination. Return nil once they are
	// durably delivered (Delivered(note) to add a note operators see with
	// the delivery), Skip(reason) when the destination does not handle
	// this trigger, Permanent(err) when retrying cannot help; any other
	// error is retried later with the same rows. Push may be called
	// concurrently for different uuids, never for the same uuid. ctx
	// carries the service's push timeout (PUSH_TIMEOUT, 30s by default)
	// as its deadline and is cancelled when the service stops the plugin;
	// a push still running at the deadline counts as a failed attempt and
	// its process is restarted. ctx also carries the trace context of the
	// service's push span (see TraceContext): a call the plugin makes with
	// ctx through OpenTelemetry's instrumentation joins the trace.
	Push(ctx context.Context, req PushRequest) error
}

// Host is what the service running a plugin offers it.
type Host interface {
	// Logger returns the plugin's logger. Its records reach the service as
	// JSON lines on stderr and are re-logged under the plugin's instance
	// name at their level; attribute values keep their types (a duration
	// reads 2s). The service sets the level (its LOG_LEVEL).
	Logger() *slog.Logger
	// State returns the plugin's durable key-value store.
	State() State
	// InstanceName is the name from the plugin's file name (riffyn for
	// watcher-riffyn).
	InstanceName() string
}

// WatcherHost is the host as a watcher sees it.
type WatcherHost interface {
	Host
	// Emit sends a trigger and blocks until the host has durably stored it
	// (or found its key already stored) and returns its receipt, or until
	// the host rejects it. key is the trigger's idempotency key, e.g.
	// "riffyn:<runId>": the host stores one trigger per key and plugin
	// instance, and emitting a stored key again returns the original
	// trigger's receipt with Duplicate set; "" stores every emission. A
	// rejection for bad input matches ErrInvalid and holds a
	// *ValidationError; ErrUnavailable means retry later. Update your own
	// bookkeeping only after Emit returns without error: that way a crash
	// neither loses nor doubles a trigger. When ctx carries an
	// OpenTelemetry span context, the trigger's trace continues it, up to
	// the AMQP message the service layer receives.
	Emit(ctx context.Context, t Trigger, key string) (Receipt, error)
}

// Receipt is the host's acknowledgement of an emitted trigger.
type Receipt struct {
	// UUID is the stored trigger's uuid.
	UUID string
	// Duplicate is true when a trigger with the same key was stored
	// before; UUID is then the original trigger's.
	Duplicate bool
}

// PushRequest is one push of rows to a pusher.
type PushRequest struct {
	// UUID is the trigger the rows belong to.
	UUID string
	// Rows are the rows, in the order they were accepted. They may come
	// from several requests of the uuid that queued up; the host then
	// retries them one request at a time if the push fails.
	Rows []Row
	// Trigger is the stored trigger, as the control-tower returned it; nil
	// when it is unknown (no control-tower configured, or not found).
	Trigger *StoredTrigger
	// Attempt counts deliveries of these rows, starting at 1 (for a push
	// of several requests, the attempt of the oldest).
	Attempt int
}

// State is a small durable key-value store scoped to one plugin instance,
// kept in the host's database, so a restarted plugin resumes where it
// stopped.
type State interface {
	// Get returns the value of key, or an error matching ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, replacing any previous value.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the entries whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]KeyValue, error)
}

// KeyValue is one State entry.
type KeyValue struct {
	Key   string
	Value []byte
}
