package pluginhost

import (
	"context"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// stateServer serves the host's State to a plugin over the broker.
type stateServer struct {
	pluginpb.UnimplementedStateServer
	state sdk.State
}

func (s *stateServer) Get(ctx context.Context, req *pluginpb.StateGetRequest) (*pluginpb.StateGetResponse, error) {
	v, err := s.state.Get(ctx, req.GetKey())
	return &pluginpb.StateGetResponse{Value: v, Error: wire.ToPBError(err)}, nil
}

func (s *stateServer) Put(ctx context.Context, req *pluginpb.StatePutRequest) (*pluginpb.StatePutResponse, error) {
	err := s.state.Put(ctx, req.GetKey(), req.GetValue())
	return &pluginpb.StatePutResponse{Error: wire.ToPBError(err)}, nil
}

func (s *stateServer) Delete(ctx context.Context, req *pluginpb.StateDeleteRequest) (*pluginpb.StateDeleteResponse, error) {
	err := s.state.Delete(ctx, req.GetKey())
	return &pluginpb.StateDeleteResponse{Error: wire.ToPBError(err)}, nil
}

func (s *stateServer) List(ctx context.Context, req *pluginpb.StateListRequest) (*pluginpb.StateListResponse, error) {
	kvs, err := s.state.List(ctx, req.GetPrefix())
	resp := &pluginpb.StateListResponse{Error: wire.ToPBError(err)}
	for _, kv := range kvs {
		resp.Entries = append(resp.Entries, &pluginpb.KeyValue{Key: kv.Key, Value: kv.Value})
	}
	return resp, nil
}
