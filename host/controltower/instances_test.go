package controltower_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/config"
	"github.com/routinglayer/routing/host/controltower"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/metrics/metricstest"
	"github.com/routinglayer/routing/host/store"
)

// towerOn is a control-tower configuration for instance id on the
// PostgreSQL database db, publishing to exchange.
func towerOn(tb testing.TB, db, exchange, id, amqpURL string) controltower.Config {
	tb.Helper()
	cfg := testConfig(tb, amqpURL)
	cfg.DatabaseURL, cfg.AMQPExchange, cfg.InstanceID = db, exchange, id
	return cfg
}

type statusBody struct {
	Summary struct {
		PendingTriggers int    `json:"pendingTriggers"`
		Broker          string `json:"broker"`
		Instance        string `json:"instance"`
		Instances       []struct {
			ID           string    `json:"id"`
			StartedAt    time.Time `json:"startedAt"`
			LastSeen     time.Time `json:"lastSeen"`
			OutboxClaims int       `json:"outboxClaims"`
			Watchers     []string  `json:"watchers"`
		} `json:"instances"`
	} `json:"summary"`
}

func status(tb testing.TB, base string) statusBody {
	tb.Helper()
	var s statusBody
	r := call(tb, http.MethodGet, base+"/status", nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /status: %d %s", r.Status, r.Body)
	}
	r.JSON(tb, &s)
	return s
}

// Three control-towers in this process on one PostgreSQL schema and one
// exchange: triggers posted round-robin across them reach the one bound
// consumer once each.
func TestControlTowersSharingADatabasePublishEachTriggerOnce(t *testing.T) {
	db := testkit.PostgresURL(t)
	broker := "amqp://guest:guest@" + brokerAddr() + "/"
	exchange := randomName("test-instances-")
	c := consume(t, exchange, "#")
	ids := []string{"tower-a", "tower-b", "tower-c"}
	bases := make([]string, len(ids))
	for i, id := range ids {
		_, bases[i] = start(t, towerOn(t, db, exchange, id, broker))
	}

	const n = 300
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted = map[string]bool{}
	)
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n; i += 6 {
				r := call(t, http.MethodPost, bases[i%len(bases)]+"/triggers",
					fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1","protocol":"Instances","spec":{"n":%d}}`, i))
				if r.Status != http.StatusCreated {
					t.Errorf("POST to %s: %d %s", ids[i%len(ids)], r.Status, r.Body)
					return
				}
				var s stored
				r.JSON(t, &s)
				mu.Lock()
				accepted[s.UUID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every publish the broker confirmed is counted by the instance that
	// made it: once the outbox is empty and the consumer has as many
	// messages as there were confirmed publishes, nothing more is coming.
	published := func() (total float64, per []float64) {
		for _, base := range bases {
			v, _ := metricstest.Scrape(t, base+"/metrics", "").Value("routing_triggers_published_total", "outcome", "published")
			total += v
			per = append(per, v)
		}
		return total, per
	}
	var (
		total float64
		per   []float64
	)
	waitFor(t, 60*time.Second, "every trigger published and received", func() bool {
		if status(t, bases[0]).Summary.PendingTriggers != 0 {
			return false
		}
		total, per = published()
		return total >= n && float64(len(c.received())) >= total
	})
	got, distinct := len(c.received()), c.ids()
	t.Logf("%d triggers posted round-robin to %d control-towers: %d confirmed publishes (per instance %v), %d messages, %d distinct ids, %d duplicates",
		n, len(ids), int(total), per, got, len(distinct), got-len(distinct))
	if got != n || len(distinct) != n || total != n {
		t.Fatalf("%d messages, %d distinct, %v confirmed publishes for %d triggers: want one each", got, len(distinct), total, n)
	}
	for id := range distinct {
		if !accepted[id] {
			t.Fatalf("message %s was never posted", id)
		}
	}

	// Each lists the live instances, itself included.
	for i, base := range bases {
		s := status(t, base)
		var live []string
		for _, in := range s.Summary.Instances {
			live = append(live, in.ID)
			if in.StartedAt.IsZero() || in.LastSeen.IsZero() || in.Watchers == nil {
				t.Fatalf("instance %+v: want startedAt, lastSeen and a watcher list", in)
			}
		}
		if s.Summary.Instance != ids[i] || strings.Join(live, ",") != strings.Join(ids, ",") {
			t.Fatalf("/status of %s: instance %q, instances %v", ids[i], s.Summary.Instance, live)
		}
	}
}

// A claim left by an instance that died is taken over once its lease
// ends, and counted as reclaimed; claims an instance held before it was
// restarted under the same name are released at once.
func TestClaimsOfADeadInstanceAreTakenOver(t *testing.T) {
	db := testkit.PostgresURL(t)
	broker := "amqp://guest:guest@" + brokerAddr() + "/"
	exchange := randomName("test-takeover-")
	c := consume(t, exchange, "#")

	st, err := store.Open(context.Background(), store.Config{DatabaseURL: db}, hclog.NewNullLogger())
	must(t, err)
	defer st.Close()
	ctx := context.Background()
	for _, uuid := range []string{"dead0000", "restarted0000"} {
		_, _, err := st.InsertTrigger(ctx, store.Trigger{UUID: uuid, APIVersion: "OT-2/v1alpha1", Protocol: "Takeover",
			Body: []byte(`{"uuid":"` + uuid + `","apiVersion":"OT-2/v1alpha1","protocol":"Takeover","spec":{"a":1}}`), Source: "http"})
		must(t, err)
	}
	// tower-dead claims the first for 2 s and is never heard of again;
	// tower-b claims the second for an hour, then stops.
	if got, err := st.ClaimOutbox(ctx, "tower-dead", 1, 2*time.Second); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if got, err := st.ClaimOutbox(ctx, "tower-b", 1, time.Hour); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	claimed := time.Now()

	// tower-b starts again: it releases its own claim and publishes it.
	_, base := start(t, towerOn(t, db, exchange, "tower-b", broker))
	waitFor(t, 20*time.Second, "the restarted instance's own claim to be published", func() bool { return c.ids()["restarted0000"] == 1 })
	if c.ids()["dead0000"] != 0 {
		t.Fatalf("the dead instance's entry was published %s after its claim, before its lease ended", time.Since(claimed))
	}
	waitFor(t, 20*time.Second, "the dead instance's entry to be taken over", func() bool { return c.ids()["dead0000"] == 1 })
	if waited := time.Since(claimed); waited < 2*time.Second {
		t.Fatalf("taken over %s after the claim, within its 2s lease", waited)
	}
	m := metricstest.Scrape(t, base+"/metrics", "")
	if got := m.Must(t, "routing_outbox_reclaimed_total"); got != 1 {
		t.Fatalf("routing_outbox_reclaimed_total = %v, want 1 (the dead instance's entry alone)", got)
	}
	waitFor(t, 10*time.Second, "both triggers marked published", func() bool {
		for _, uuid := range []string{"dead0000", "restarted0000"} {
			var got stored
			if call(t, http.MethodGet, base+"/triggers/"+uuid, nil).JSON(t, &got); got.Status != "published" {
				return false
			}
		}
		return true
	})
	if n := len(c.received()); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

// AMQP_URL lists a cluster's nodes: an unreachable first node is passed
// over and triggers are published through the next.
func TestUnreachableFirstBrokerNode(t *testing.T) {
	cfg := testConfig(t, "amqp://guest:guest@127.0.0.1:1/,amqp://guest:guest@"+brokerAddr()+"/")
	c := consume(t, cfg.AMQPExchange, "#")
	_, base := start(t, cfg)
	r := call(t, http.MethodPost, base+"/triggers", []byte(`{"apiVersion":"OT-2/v1alpha1","protocol":"Failover","spec":{"a":1}}`))
	if r.Status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	var created stored
	r.JSON(t, &created)
	waitFor(t, 20*time.Second, "the trigger to arrive through the second node", func() bool { return c.ids()[created.UUID] == 1 })
	if s := status(t, base); s.Summary.Broker != "amqp://guest:xxxxx@"+brokerAddr()+"/" {
		t.Fatalf("/status broker %q, want the second node, password redacted", s.Summary.Broker)
	}
}

func TestAMQPURLNamesTheBadNode(t *testing.T) {
	for _, tt := range []struct{ value, want string }{
		{"amqp://guest:secret@a:5672/,http://guest:secret@b/", `AMQP_URL: node 2 of 2, "http://guest:xxxxx@b/"`},
		{"amqp://guest:secret@a:5672/,", "AMQP_URL: node 2 of 2 is empty"},
		{"amqp://guest:secret@a:5672/, amqp://guest:s%zzecret@b/", `AMQP_URL: node 2 of 2, "amqp://xxxxx@b/"`},
		{"amqp:///vhost", `AMQP_URL: node 1 of 1, "amqp:///vhost"`},
	} {
		var cfg controltower.Config
		err := config.Load(&cfg, []string{"AMQP_URL=" + tt.value})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("AMQP_URL=%s: %v, want %s and no password", tt.value, err, tt.want)
		}
	}
	var cfg controltower.Config
	must(t, config.Load(&cfg, []string{"AMQP_URL=amqp://guest:guest@a:5672/, amqps://guest:guest@b:5671/"}))
	if got := cfg.AMQPURLs(); len(got) != 2 || got[1] != "amqps://guest:guest@b:5671/" {
		t.Fatalf("nodes %q", got)
	}
}
