//go:build fulllimit

// This test moves some 70 MiB through the gateway and a pusher (about
// 25 s and 2 GiB of memory under -race on two cores), so it runs only when
// asked for:
//
//	go test -race -tags fulllimit -run TestRequestOverTheProtocolLimitArrivesInParts ./host/datagateway/
//
// TestLargeRequestsArePushedWithinTheMessageLimit covers the same paths
// with the limit lowered.

package datagateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk/pluginhost"
)

// At the real limit (pluginhost.MaxMessageBytes, 64 MiB): one request of about
// 70 MiB of rows reaches the pusher in two pushes, every row once, in
// order.
func TestRequestOverTheProtocolLimitArrivesInParts(t *testing.T) {
	e := newEnv(t, "MAX_BODY_BYTES=100000000")
	e.vars = append(e.vars, "PLUGIN_PROBE_OUT="+e.out)
	install(t, "pusher-probe", e.plugins, "pusher-probe")
	svc, base := start(t, e.config(t))
	waitRunning(t, svc, "probe")
	const n, pad = 140, 512 << 10
	var body strings.Builder
	body.WriteString(`{"uuid":"huge","rows":[`)
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"index":%d,"data":{"i":%d,"text":"%s"}}`, i, i, strings.Repeat(string(rune('a'+i%26)), pad))
	}
	body.WriteString("]}")
	if body.Len() <= pluginhost.MaxMessageBytes {
		t.Fatalf("body of %d bytes: want more than the limit", body.Len())
	}
	if r := call(t, http.MethodPost, base+"/data/batch", body.String()); r.Status != http.StatusAccepted {
		t.Fatalf("POST of %d bytes: %d %.300s", body.Len(), r.Status, r.Body)
	}
	body.Reset()
	var ls []line
	waitFor(t, 120*time.Second, "every row delivered", func() bool {
		ls = lines(t, e.out, "probe")
		return len(ls) >= n
	})
	pushes := map[int64]int{}
	for i, l := range ls {
		if *l.Index != i || len(l.Data) != len(`{"i":,"text":""}`)+len(fmt.Sprint(i))+pad {
			t.Fatalf("row %d: index %d, %d bytes of data", i, *l.Index, len(l.Data))
		}
		if l.Bytes > pluginhost.MaxMessageBytes {
			t.Fatalf("push %d carried %d bytes, over the limit", l.Push, l.Bytes)
		}
		pushes[l.Push] = l.Bytes
	}
	if len(ls) != n || len(pushes) < 2 {
		t.Fatalf("%d rows in %d pushes; want %d rows once each, in 2 pushes or more", len(ls), len(pushes), n)
	}
	t.Logf("%d rows in pushes of %v bytes", n, pushes)
}
