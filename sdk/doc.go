// Package sdk is the contract between the routing layer's services and
// their plugins: what a plugin implements (Watcher, Pusher), what the
// service offers it (Host, WatcherHost, State), the data that crosses
// (Trigger, StoredTrigger, Row, PushRequest), how it is validated, and
// the errors both sides test with errors.Is.
//
// A plugin is an executable named watcher-<name> (run by the
// control-tower) or pusher-<name> (run by the data-gateway) in the
// service's PLUGINS_DIR; <name> is the plugin's instance name. Its main
// is one line, with package serve:
//
//	func main() { serve.Pusher(webhook.New()) }
//
// Package sdktest runs a plugin inside a test, over the same gRPC
// protocol, against a fake service, and checks it against the contract
// (sdktest.CheckWatcher, sdktest.CheckPusher).
//
// # Lifecycle
//
// The service starts the plugin's process and, for each process:
//
//  1. calls Info. The plugin describes itself; the configuration is not
//     loaded yet, so Info must not depend on it. The service checks that
//     the file name's kind matches and that every required key is set;
//     a missing key fails the plugin without starting it.
//  2. loads the configuration: the struct Info().Config points to is
//     filled from the PLUGIN_<NAME>_* variables (see Configuration). An
//     error (a missing key, a value that does not parse, an error from
//     the struct's Validate method) matches ErrConfig and names the
//     variable: "PLUGIN_WEBHOOK_TIMEOUT="soon" is not a duration (e.g.
//     30s, 1m30s, 250ms)".
//  3. runs it: a Watcher's Run is called once and runs until its
//     context is done; a Pusher's Start is called once, then Push for
//     each batch of rows, concurrently for different trigger uuids and
//     never for the same uuid.
//  4. stops it: Run's context is cancelled, or a Push in flight has its
//     context cancelled; the process is then stopped. Return promptly
//     when a context is done.
//
// A restart repeats all four steps in a new process: after a crash (Run
// returning an error, a panic, the process dying, a health check going
// unanswered, a Push outliving its deadline), when an operator asks for
// one, or when the file is replaced. Nothing survives a restart but
// State, which the service keeps in its database per instance name. A
// crash is retried with a growing delay; after five crashes in a row
// the plugin is left failed until an operator restarts it. An error
// matching ErrConfig, from the loader, Run or Start, fails the plugin at
// once: restarting cannot fix a configuration.
//
// # Watchers
//
// A watcher emits triggers with WatcherHost.Emit, which returns once the
// control-tower has stored the trigger durably. Each emission carries an
// idempotency key, such as "riffyn:<runId>": the control-tower stores one
// trigger per key and plugin instance (watcher-a and watcher-b may use
// the same keys), and an emission of a stored key returns the original
// trigger's Receipt with Duplicate set. Record what you emitted (in
// State) only after Emit returns: a crash in between repeats the
// emission, and the key makes the repetition harmless.
//
// # Pushers
//
// A pusher delivers rows to one destination. Push's context carries the
// data-gateway's push timeout (PUSH_TIMEOUT, 30s by default) as its
// deadline; a Push still running then counts as a failed attempt and its
// process is restarted. Its outcome is one of:
//
//   - nil: delivered durably; Delivered(note) delivers with a note that
//     operators see with the delivery (GET /data/{id});
//   - Skip(reason): this destination does not handle the trigger;
//   - Permanent(err): retrying cannot help; the rows are dead-lettered at
//     once (operators can retry them);
//   - any other error: retried later with the same rows, with a growing
//     delay, up to MAX_ATTEMPTS attempts.
//
// Rows arrive as they were accepted: the keys of each row's Data in the
// order the client sent them, each value's bytes as sent (1.50 stays
// 1.50). Delivery is at least once: a Push may repeat rows it delivered
// before a crash.
//
// # Configuration
//
// Fields of the configuration struct take caarlos0/env tags, read under
// the instance's prefix PLUGIN_<NAME>_ (<NAME> upper-cased, '-' becoming
// '_'), plus two for operators:
//
//	type Config struct {
//		URL     string        `env:"URL,required" help:"where rows are POSTed"`
//		Token   string        `env:"TOKEN" secret:"true" help:"bearer token"`
//		Timeout time.Duration `env:"TIMEOUT" envDefault:"10s" help:"bound on one POST"`
//	}
//
// help is shown with the key in GET /plugins; secret:"true" masks the
// value wherever the service shows it (keys ending in KEY, TOKEN,
// PASSWORD or SECRET are masked anyway). A struct with a method
// Validate() error is validated after loading. The plugin process gets
// only its own PLUGIN_<NAME>_* variables and a short allow-list (PATH,
// HOME, TMPDIR, TZ, LANG, the proxy and CA variables).
//
// # Logging
//
// Host.Logger is a *slog.Logger. Its records reach the service as JSON
// lines on stderr and are re-logged under the instance name at their
// level (the service's LOG_LEVEL applies). Never write to stdout: it
// carries go-plugin's handshake, and a line written there first makes
// the service refuse the plugin ("wrote to stdout before the handshake").
//
// # Tracing
//
// The services trace with OpenTelemetry. Push's ctx carries the push
// span's context, in the trace of the request that brought the rows:
// TraceContext gives it as W3C traceparent and tracestate header values
// for a call to the destination (with OpenTelemetry's instrumentation,
// passing ctx is enough). A watcher whose Emit ctx carries a span has the
// trigger's trace continue it.
//
// # Versions
//
// This is version 1.1.0 of the SDK, speaking version 1 of the plugin
// protocol; sdk/CHANGELOG.md says how plugins and services of different
// SDK versions work together.
package sdk
