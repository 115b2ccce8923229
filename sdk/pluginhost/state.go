package sdk

import (
	"context"

	"google.golang.org/grpc"

	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// stateServer serves the host's State to a plugin over the broker.
type stateServer struct {
	pluginpb.UnimplementedStateServer
	state State
}

func (s *stateServer) Get(ctx context.Context, req *pluginpb.StateGetRequest) (*pluginpb.StateGetResponse, error) {
	v, err := s.state.Get(ctx, req.GetKey())
	return &pluginpb.StateGetResponse{Value: v, Error: toPBError(err)}, nil
}

func (s *stateServer) Put(ctx context.Context, req *pluginpb.StatePutRequest) (*pluginpb.StatePutResponse, error) {
	err := s.state.Put(ctx, req.GetKey(), req.GetValue())
	return &pluginpb.StatePutResponse{Error: toPBError(err)}, nil
}

func (s *stateServer) Delete(ctx context.Context, req *pluginpb.StateDeleteRequest) (*pluginpb.StateDeleteResponse, error) {
	err := s.state.Delete(ctx, req.GetKey())
	return &pluginpb.StateDeleteResponse{Error: toPBError(err)}, nil
}

func (s *stateServer) List(ctx context.Context, req *pluginpb.StateListRequest) (*pluginpb.StateListResponse, error) {
	kvs, err := s.state.List(ctx, req.GetPrefix())
	resp := &pluginpb.StateListResponse{Error: toPBError(err)}
	for _, kv := range kvs {
		resp.Entries = append(resp.Entries, &pluginpb.KeyValue{Key: kv.Key, Value: kv.Value})
	}
	return resp, nil
}

// stateClient is the plugin's view of the host's State.
type stateClient struct {
	client pluginpb.StateClient
	conn   *grpc.ClientConn
}

func (c *stateClient) Get(ctx context.Context, key string) ([]byte, error) {
	resp, err := c.client.Get(ctx, &pluginpb.StateGetRequest{Key: key})
	if err != nil {
		return nil, transportError("state get", err)
	}
	if err := fromPBError(resp.GetError()); err != nil {
		return nil, err
	}
	return resp.GetValue(), nil
}

func (c *stateClient) Put(ctx context.Context, key string, value []byte) error {
	resp, err := c.client.Put(ctx, &pluginpb.StatePutRequest{Key: key, Value: value})
	if err != nil {
		return transportError("state put", err)
	}
	return fromPBError(resp.GetError())
}

func (c *stateClient) Delete(ctx context.Context, key string) error {
	resp, err := c.client.Delete(ctx, &pluginpb.StateDeleteRequest{Key: key})
	if err != nil {
		return transportError("state delete", err)
	}
	return fromPBError(resp.GetError())
}

func (c *stateClient) List(ctx context.Context, prefix string) ([]KeyValue, error) {
	resp, err := c.client.List(ctx, &pluginpb.StateListRequest{Prefix: prefix})
	if err != nil {
		return nil, transportError("state list", err)
	}
	if err := fromPBError(resp.GetError()); err != nil {
		return nil, err
	}
	out := make([]KeyValue, len(resp.GetEntries()))
	for i, e := range resp.GetEntries() {
		out[i] = KeyValue{Key: e.GetKey(), Value: e.GetValue()}
	}
	return out, nil
}
