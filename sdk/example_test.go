package sdk_test

import (
	"context"
	"fmt"

	"github.com/routinglayer/routing/sdk"
)

// A pusher that prints rows. A real plugin's main is just
// sdk.ServePusher(&printPusher{}).
type printPusher struct {
	cfg struct {
		Prefix string `env:"PREFIX" envDefault:">" help:"printed before each row"`
	}
}

func (p *printPusher) Info() sdk.Info {
	return sdk.Info{Name: "print", Version: "1.0.0", Description: "prints rows", Config: &p.cfg}
}

func (p *printPusher) Start(context.Context, sdk.Host) error { return nil }

func (p *printPusher) Push(_ context.Context, req sdk.PushRequest) error {
	if req.Trigger != nil && req.Trigger.Metadata != nil && req.Trigger.Metadata.Source != "riffyn" {
		return sdk.Skip("only riffyn triggers")
	}
	for _, row := range req.Rows {
		data, err := row.Data.MarshalJSON()
		if err != nil {
			return sdk.Permanent(err)
		}
		fmt.Println(p.cfg.Prefix, req.UUID, string(data))
	}
	return nil
}

func Example_pusher() {
	p := &printPusher{}
	p.cfg.Prefix = ">"
	var row sdk.Row
	if err := sdk.DecodeStrict([]byte(`{"index":0,"data":{"odMeasured":0.42,"mediaTemp":37.1}}`), &row); err != nil {
		panic(err)
	}
	_ = p.Push(context.Background(), sdk.PushRequest{UUID: "3f2a9c0d1b7e4a55", Rows: []sdk.Row{row}, Attempt: 1})
	fmt.Println(sdk.ConfigKeys(p.Info().Config))
	// Output:
	// > 3f2a9c0d1b7e4a55 {"odMeasured":0.42,"mediaTemp":37.1}
	// [{PREFIX false false > printed before each row}]
}

func ExampleDecodeTrigger() {
	_, err := sdk.DecodeTrigger([]byte(`{"apiVersion":"OT-2","protocol":"PlateTransfer","plate":{"rows":4,"columns":1},"spec":[{"volume":50}]}`))
	fmt.Println(err)
	// Output:
	// apiVersion: "OT-2" must look like <api>/v<N>[suffix][/<device>], e.g. OT-2/v1alpha1 or ChiBio/v1alpha1/ChiBio1; spec: has 1 wells but plate 4x1 has 4
}
