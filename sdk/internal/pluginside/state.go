package pluginside

import (
	"context"

	"google.golang.org/grpc"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// stateClient is the plugin's view of the host's State.
type stateClient struct {
	client pluginpb.StateClient
	conn   *grpc.ClientConn
}

func (c *stateClient) Get(ctx context.Context, key string) ([]byte, error) {
	resp, err := c.client.Get(ctx, &pluginpb.StateGetRequest{Key: key})
	if err != nil {
		return nil, wire.TransportError("state get", err)
	}
	if err := wire.FromPBError(resp.GetError()); err != nil {
		return nil, err
	}
	return resp.GetValue(), nil
}

func (c *stateClient) Put(ctx context.Context, key string, value []byte) error {
	resp, err := c.client.Put(ctx, &pluginpb.StatePutRequest{Key: key, Value: value})
	if err != nil {
		return wire.TransportError("state put", err)
	}
	return wire.FromPBError(resp.GetError())
}

func (c *stateClient) Delete(ctx context.Context, key string) error {
	resp, err := c.client.Delete(ctx, &pluginpb.StateDeleteRequest{Key: key})
	if err != nil {
		return wire.TransportError("state delete", err)
	}
	return wire.FromPBError(resp.GetError())
}

func (c *stateClient) List(ctx context.Context, prefix string) ([]sdk.KeyValue, error) {
	resp, err := c.client.List(ctx, &pluginpb.StateListRequest{Prefix: prefix})
	if err != nil {
		return nil, wire.TransportError("state list", err)
	}
	if err := wire.FromPBError(resp.GetError()); err != nil {
		return nil, err
	}
	out := make([]sdk.KeyValue, len(resp.GetEntries()))
	for i, e := range resp.GetEntries() {
		out[i] = sdk.KeyValue{Key: e.GetKey(), Value: e.GetValue()}
	}
	return out, nil
}
