package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

var errDispenseOnly = errors.New("the host side's adapter does not serve plugins")

// dispenser is the go-plugin adapter of one kind of plugin on the host's
// side: it dispenses the kind's client, which newClient makes from the
// plugin's connection and broker and the Info client every kind has.
type dispenser struct {
	plugin.NetRPCUnsupportedPlugin
	newClient func(info infoClient, conn *grpc.ClientConn, broker *plugin.GRPCBroker) any
}

func (p *dispenser) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errDispenseOnly }

func (p *dispenser) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return p.newClient(infoClient{client: pluginpb.NewPluginClient(conn)}, conn, broker), nil
}

type infoClient struct {
	client pluginpb.PluginClient
}

func (c *infoClient) Info(ctx context.Context) (Manifest, error) {
	resp, err := c.client.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return Manifest{}, wire.TransportError("info", err)
	}
	return fromPBInfo(resp), nil
}

// serveState serves state to the plugin on a new broker id. stop ends it.
func serveState(broker *plugin.GRPCBroker, state sdk.State) (id uint32, stop func()) {
	id = broker.NextId()
	var (
		mu     sync.Mutex
		server *grpc.Server
	)
	served := make(chan struct{})
	go func() {
		defer close(served)
		broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			pluginpb.RegisterStateServer(s, &stateServer{state: state})
			mu.Lock()
			server = s
			mu.Unlock()
			return s
		})
	}()
	return id, func() {
		mu.Lock()
		s := server
		mu.Unlock()
		if s != nil {
			s.Stop()
			<-served
		}
	}
}

type watcherClient struct {
	infoClient
	watcher pluginpb.WatcherClient
	broker  *plugin.GRPCBroker
}

func (c *watcherClient) Run(ctx context.Context, sink TriggerSink, state sdk.State) error {
	id, stop := serveState(c.broker, state)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.watcher.Run(ctx)
	if err != nil {
		return wire.TransportError("run", err)
	}
	if err := stream.Send(&pluginpb.HostMessage{Msg: &pluginpb.HostMessage_Start{Start: &pluginpb.Start{StateBrokerId: id}}}); err != nil {
		return wire.TransportError("run", err)
	}
	// Emissions are accepted concurrently (a watcher emitting from several
	// goroutines gets its triggers stored together) and answered by seq.
	var (
		sendMu  sync.Mutex
		pending sync.WaitGroup
		slots   = make(chan struct{}, maxConcurrentEmits)
	)
	defer pending.Wait()
	for {
		msg, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return wire.TransportError("run", err)
		}
		switch m := msg.GetMsg().(type) {
		case *pluginpb.WatcherMessage_Done:
			if err := wire.FromPBError(m.Done.GetError()); err != nil {
				return fmt.Errorf("watcher stopped: %w", err)
			}
			return nil
		case *pluginpb.WatcherMessage_Emit:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			pending.Go(func() {
				defer func() { <-slots }()
				reply := acceptEmit(ctx, sink, m.Emit)
				sendMu.Lock()
				defer sendMu.Unlock()
				// A failed send breaks the stream: Recv reports it.
				_ = stream.Send(reply)
			})
		}
	}
}

// maxConcurrentEmits bounds the emissions of one watcher the host works
// on at once; more wait in the stream (the watcher's Emit calls block).
const maxConcurrentEmits = 256

// acceptEmit hands one emission to the sink and builds the reply.
func acceptEmit(ctx context.Context, sink TriggerSink, e *pluginpb.Emit) *pluginpb.HostMessage {
	ctx = sdk.WithTraceContext(ctx, e.GetTraceparent(), e.GetTracestate())
	receipt, err := sink.Accept(ctx, Emission{Trigger: wire.FromPBTrigger(e.GetTrigger()), Key: e.GetKey()})
	if err != nil {
		if !errors.Is(err, sdk.ErrInvalid) && !errors.Is(err, sdk.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
		}
		return &pluginpb.HostMessage{Msg: &pluginpb.HostMessage_Reject{Reject: &pluginpb.Reject{
			Seq: e.GetSeq(), Error: wire.ToPBError(err),
		}}}
	}
	return &pluginpb.HostMessage{Msg: &pluginpb.HostMessage_Ack{Ack: &pluginpb.Ack{
		Seq: e.GetSeq(), Uuid: receipt.UUID, Duplicate: receipt.Duplicate,
	}}}
}

type pusherClient struct {
	infoClient
	pusher pluginpb.PusherClient
	broker *plugin.GRPCBroker

	mu        sync.Mutex
	stopState func()
}

func (c *pusherClient) Start(ctx context.Context, state sdk.State) error {
	id, stop := serveState(c.broker, state)
	c.mu.Lock()
	if c.stopState != nil {
		c.stopState()
	}
	c.stopState = stop
	c.mu.Unlock()
	resp, err := c.pusher.Start(ctx, &pluginpb.StartRequest{StateBrokerId: id})
	if err != nil {
		return wire.TransportError("start", err)
	}
	return wire.FromPBError(resp.GetError())
}

func (c *pusherClient) Push(ctx context.Context, req sdk.PushRequest, rows EncodedRows) error {
	req.Rows = nil
	return c.push(ctx, withRows(wire.ToPBPushRequest(&req), rows))
}

func (c *pusherClient) push(ctx context.Context, msg *pluginpb.PushRequest) error {
	resp, err := c.pusher.Push(wire.OutgoingTrace(ctx), msg)
	if err != nil {
		return wire.TransportError("push", err)
	}
	if resp.GetError() == nil {
		return sdk.Delivered(resp.GetNote())
	}
	return wire.FromPBError(resp.GetError())
}

func fromPBInfo(p *pluginpb.InfoResponse) Manifest {
	m := Manifest{
		Name:        p.GetName(),
		Kind:        Kind(p.GetKind()),
		Version:     p.GetVersion(),
		SDKVersion:  p.GetSdkVersion(),
		Description: p.GetDescription(),
		Language:    p.GetLanguage(),
	}
	for _, k := range p.GetConfig() {
		m.Config = append(m.Config, ConfigKey{
			Name: k.GetName(), Required: k.GetRequired(), Secret: k.GetSecret(), Default: k.GetDefault(), Help: k.GetHelp(),
		})
	}
	return m
}
