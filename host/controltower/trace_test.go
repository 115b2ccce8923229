package controltower_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/host/internal/testkit"
)

// A watcher's emission is traced (exported over OTLP/gRPC here): the
// emission's span, of the watcher plugin, is the parent of the trigger's
// store write and of its publish, whose span the message's traceparent
// header names, so a consumer continues the trace from the watcher.
func TestAWatcherEmissionIsTracedToItsMessage(t *testing.T) {
	otlp := testkit.NewOTLPGRPC(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	cfg := testConfig(t, "amqp://guest:guest@"+brokerAddr()+"/")
	cfg.Tracing.Endpoint, cfg.Tracing.Protocol = otlp.URL, "grpc"
	inbox := t.TempDir()
	buildBinary(t, "github.com/routinglayer/routing/examples/cmd/watcher-filedrop", cfg.PluginsDir, "watcher-filedrop")
	cfg.Environ = append(cfg.Environ, "PLUGIN_FILEDROP_DIR="+inbox, "PLUGIN_FILEDROP_SCAN_INTERVAL=100ms")
	c := consume(t, cfg.AMQPExchange, "#")
	start(t, cfg)

	tmp := filepath.Join(inbox, ".run.json.tmp")
	must(t, os.WriteFile(tmp, []byte(`{"apiVersion":"ChiBio/v1alpha1/ChioBio1","protocol":"Bioreactor","spec":{"od":0.42}}`), 0o600))
	must(t, os.Rename(tmp, filepath.Join(inbox, "run.json")))
	waitFor(t, 20*time.Second, "the dropped file to be published", func() bool { return len(c.received()) == 1 })
	msg := c.received()[0]
	header, _ := msg.Headers["traceparent"].(string)
	parts := strings.Split(header, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent header %q: want a W3C traceparent", header)
	}
	traceID := parts[1]
	waitFor(t, 20*time.Second, "the emission's spans at the receiver", func() bool {
		_, emit := otlp.Find(traceID, "control-tower", "emit filedrop")
		_, publish := otlp.Find(traceID, "control-tower", "publish "+cfg.AMQPExchange)
		_, insert := otlp.Find(traceID, "control-tower", "INSERT triggers")
		return emit && publish && insert
	})
	emit, _ := otlp.Find(traceID, "control-tower", "emit filedrop")
	publish, _ := otlp.Find(traceID, "control-tower", "publish "+cfg.AMQPExchange)
	insert, _ := otlp.Find(traceID, "control-tower", "INSERT triggers")
	if emit.Attrs["routing.uuid"] != msg.MessageId || emit.Attrs["routing.watcher"] != "filedrop" {
		t.Errorf("emit span attributes %v: want the trigger %s and the watcher", emit.Attrs, msg.MessageId)
	}
	if insert.ParentID != emit.SpanID || publish.ParentID != emit.SpanID {
		t.Errorf("store write's parent %s, publish's %s: want the emission's span %s", insert.ParentID, publish.ParentID, emit.SpanID)
	}
	if parts[2] != publish.SpanID {
		t.Errorf("message's traceparent names span %s, want the publish span %s", parts[2], publish.SpanID)
	}
	if insert.Attrs["db.system.name"] != "sqlite" {
		t.Errorf("store span attributes %v", insert.Attrs)
	}
}
