package idempotency_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/httpapi"
	"github.com/routinglayer/routing/host/idempotency"
	"github.com/routinglayer/routing/host/internal/testkit"
	"github.com/routinglayer/routing/host/store"
)

func status(err error) int {
	var e *httpapi.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		values []string
		key    string
		status int
	}{
		{nil, "", 0},
		{[]string{"abc"}, "abc", 0},
		{[]string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, "8e03978e-40d5-43e8-bc93-6894a57f9324", 0},
		{[]string{`"a\"b\\c"`}, `a"b\c`, 0},
		{[]string{strings.Repeat("k", 255)}, strings.Repeat("k", 255), 0},
		{[]string{"~!#$%&'()*+,-./:;<=>?@[]^_`{|}"}, "~!#$%&'()*+,-./:;<=>?@[]^_`{|}", 0},
		{[]string{""}, "", 400},
		{[]string{`""`}, "", 400},
		{[]string{strings.Repeat("k", 256)}, "", 400},
		{[]string{"a b"}, "", 400},
		{[]string{`"a b"`}, "", 400},
		{[]string{"a\tb"}, "", 400},
		{[]string{"caf\xc3\xa9"}, "", 400},
		{[]string{`"abc`}, "", 400},
		{[]string{`"a"b"`}, "", 400},
		{[]string{`"a\nb"`}, "", 400},
		{[]string{"a", "b"}, "", 400},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add(idempotency.Header, v)
		}
		key, err := idempotency.Parse(h)
		if key != tc.key || status(err) != tc.status {
			t.Errorf("%q: key %q, error %v; want %q, status %d", tc.values, key, err, tc.key, tc.status)
		}
		if err != nil && !strings.Contains(err.Error(), "Idempotency-Key") {
			t.Errorf("%q: %v does not name the header", tc.values, err)
		}
	}
}

func request(key string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/data", nil)
	if key != "" {
		r.Header.Set(idempotency.Header, key)
	}
	return r
}

// Begin: no key, a new key (in flight until Done), a stored key with the
// same body (its record) or another (422).
func TestBegin(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()}, hclog.NewNullLogger())
	testkit.Must(t, err)
	defer st.Close()
	keys := idempotency.New(st, time.Hour, hclog.NewNullLogger())

	if c, rec, err := keys.Begin(request(""), "/data", []byte("{}")); c != nil || rec != nil || err != nil || c.Key() != nil {
		t.Fatalf("no key: %v %v %v", c, rec, err)
	}
	c, rec, err := keys.Begin(request("k1"), "/data", []byte(`{"a":1}`))
	if err != nil || rec != nil || c == nil || c.Key().Key != "k1" || c.Key().TTL != time.Hour {
		t.Fatalf("new key: %v %v %v", c, rec, err)
	}
	if _, _, err := keys.Begin(request("k1"), "/data", []byte(`{"a":1}`)); status(err) != http.StatusConflict || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("key in flight: %v", err)
	}
	if _, _, err := keys.Begin(request("k1"), "/data/batch", []byte(`{"a":1}`)); err != nil {
		t.Fatalf("the key on another endpoint: %v", err)
	}
	if _, err := st.InsertDeliveryWithKey(context.Background(), c.Key(), store.Delivery{UUID: "u", Rows: []byte("[]"), RowCount: 1}, []string{"p"}); err != nil {
		t.Fatal(err)
	}
	c.Done()
	c, rec, err = keys.Begin(request("k1"), "/data", []byte(`{"a":1}`))
	if err != nil || c != nil || rec == nil || rec.Status != http.StatusAccepted {
		t.Fatalf("stored key, same body: %v %+v %v", c, rec, err)
	}
	_, _, err = keys.Begin(request("k1"), "/data", []byte(`{"a":2}`))
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("stored key, other body: %v", err)
	}
	if _, _, err := keys.Begin(request("bad key"), "/data", nil); status(err) != http.StatusBadRequest {
		t.Fatalf("bad key: %v", err)
	}
	var nilClaim *idempotency.Claim
	nilClaim.Done()
	if rec, err := nilClaim.Resolve(errors.New("x")); rec != nil || err == nil {
		t.Fatalf("nil claim: %v %v", rec, err)
	}
}
