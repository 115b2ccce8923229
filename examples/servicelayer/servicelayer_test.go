package servicelayer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk/client"
)

func TestRowsPerWell(t *testing.T) {
	tr, err := client.DecodeTrigger([]byte(`{"uuid":"u1","apiVersion":"OT-2/v1alpha1","protocol":"PlateTransfer",
		"plate":{"rows":2,"columns":2},"spec":[{"volume":50},{"volume":50},{"volume":100,"Bad_Key":1},{"volume":100,"nested":{"a":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Rows(tr)
	if err != nil || len(rows) != 4 {
		t.Fatalf("%v %v", rows, err)
	}
	var got []string
	for _, r := range rows {
		b, _ := json.Marshal(r)
		got = append(got, string(b))
	}
	want := []string{
		`{"index":0,"data":{"completed":true,"protocol":"PlateTransfer","volume":50,"well":"A1"}}`,
		`{"index":1,"data":{"completed":true,"protocol":"PlateTransfer","volume":50,"well":"B1"}}`,
		`{"index":2,"data":{"completed":true,"protocol":"PlateTransfer","volume":100,"well":"A2"}}`,
		`{"index":3,"data":{"completed":true,"protocol":"PlateTransfer","volume":100,"well":"B2"}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOneRowForASpecObject(t *testing.T) {
	tr, err := client.DecodeTrigger([]byte(`{"uuid":"u2","apiVersion":"OT-2/v1alpha1","protocol":"SimpleDilution","spec":{"volume":150}}`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Rows(tr)
	if err != nil || len(rows) != 1 || rows[0].Index != nil {
		t.Fatalf("%+v %v", rows, err)
	}
	if b, _ := json.Marshal(rows[0]); string(b) != `{"data":{"completed":true,"protocol":"SimpleDilution","volume":150}}` {
		t.Fatalf("%s", b)
	}
	if _, err := Rows(client.Trigger{UUID: "x", Spec: json.RawMessage(`[1,2]`)}); err == nil {
		t.Fatal("wells that are not objects")
	}
}

func TestLoad(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	c, err := Load(get)
	if err != nil || c.Binding != "OT-2.v1alpha1.#" || c.Queue != "robot-sim" || c.GatewayURL != "http://127.0.0.1:8001" || c.StepDelay != 10*time.Millisecond {
		t.Fatalf("%+v %v", c, err)
	}
	env["ROBOT_STEP_DELAY"] = "soon"
	if _, err := Load(get); err == nil || !strings.Contains(err.Error(), "ROBOT_STEP_DELAY") {
		t.Fatal(err)
	}
	env["ROBOT_STEP_DELAY"], env["AMQP_URL"] = "", "http://x"
	if _, err := Load(get); err == nil || !strings.Contains(err.Error(), "AMQP_URL") {
		t.Fatal(err)
	}
}
