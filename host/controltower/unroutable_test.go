package controltower_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
)

// Triggers no queue takes are warned about per routing key and round,
// naming them, not with a line each.
func TestUnroutableTriggersAreWarnedAboutPerRoutingKey(t *testing.T) {
	cfg := testConfig(t, "amqp://guest:guest@"+brokerAddr()+"/")
	var logs testkit.LogBuffer
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := controltower.Start(ctx, cfg, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	must(t, err)
	t.Cleanup(func() { cancel(); _ = svc.Wait() })
	base := "http://" + svc.Addr()
	var uuids []string
	for i := range 3 {
		r := call(t, http.MethodPost, base+"/triggers", fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1","protocol":"Nobody%d","spec":{"volume":1}}`, i))
		var st struct{ UUID string }
		r.JSON(t, &st)
		uuids = append(uuids, st.UUID)
	}
	waitFor(t, 30*time.Second, "the three triggers warned about", func() bool {
		out := logs.String()
		for _, u := range uuids {
			if !strings.Contains(out, u) {
				return false
			}
		}
		return true
	})
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "triggers unroutable") {
			lines++
			if !strings.Contains(l, "routingKey=OT-2.v1alpha1") {
				t.Errorf("warning without its routing key: %s", l)
			}
		}
	}
	if lines == 0 || lines > 3 {
		t.Fatalf("%d unroutable warnings for 3 triggers:\n%s", lines, logs.String())
	}
}
