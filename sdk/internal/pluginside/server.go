// Package pluginside is the plugin's end of the protocol: the go-plugin
// adapters that serve a sdk.Watcher or sdk.Pusher over gRPC, the Host a
// plugin's code sees, the State client, the configuration loader and the
// logger. Package serve runs it in a plugin process; sdktest runs it in a
// test process.
package pluginside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/internal/pluginpb"
	"github.com/routinglayer/routing/sdk/internal/wire"
)

// Runtime is what a plugin knows about where it runs.
type Runtime struct {
	// Instance is the instance name, from the plugin's file name.
	Instance string
	// Environ holds the variables the plugin's configuration is read from.
	Environ map[string]string
	// Logger is the plugin's logger.
	Logger *slog.Logger
}

// WatcherPlugin returns the go-plugin adapter that serves w. It serves
// only: its GRPCClient fails (the host's adapters are pluginhost's).
func WatcherPlugin(w sdk.Watcher, rt Runtime) plugin.Plugin {
	return &watcherPlugin{impl: w, rt: rt}
}

// PusherPlugin returns the go-plugin adapter that serves p; see
// WatcherPlugin.
func PusherPlugin(p sdk.Pusher, rt Runtime) plugin.Plugin {
	return &pusherPlugin{impl: p, rt: rt}
}

var errServeOnly = errors.New("the plugin side's adapter does not dispense clients")

type watcherPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl sdk.Watcher
	rt   Runtime
}

func (p *watcherPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, &infoServer{info: p.impl.Info, kind: wire.KindWatcher})
	pluginpb.RegisterWatcherServer(s, &watcherServer{impl: p.impl, broker: broker, rt: p.rt})
	return nil
}

func (p *watcherPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errServeOnly
}

type pusherPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl sdk.Pusher
	rt   Runtime
}

func (p *pusherPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, &infoServer{info: p.impl.Info, kind: wire.KindPusher})
	pluginpb.RegisterPusherServer(s, &pusherServer{impl: p.impl, broker: broker, rt: p.rt})
	return nil
}

func (p *pusherPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errServeOnly
}

type infoServer struct {
	pluginpb.UnimplementedPluginServer
	info func() sdk.Info
	kind string
}

func (s *infoServer) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return wire.ToPBInfo(s.info(), s.kind), nil
}

// pluginHost is the Host a plugin's code sees.
type pluginHost struct {
	rt    Runtime
	state sdk.State
}

func (h *pluginHost) Logger() *slog.Logger { return h.rt.Logger }
func (h *pluginHost) State() sdk.State     { return h.state }
func (h *pluginHost) InstanceName() string { return h.rt.Instance }

// dialState connects to the State service the host serves on the broker.
func dialState(broker *plugin.GRPCBroker, id uint32) (*stateClient, error) {
	conn, err := broker.Dial(id)
	if err != nil {
		return nil, fmt.Errorf("dial host state service: %w", err)
	}
	return &stateClient{client: pluginpb.NewStateClient(conn), conn: conn}, nil
}

type watcherServer struct {
	pluginpb.UnimplementedWatcherServer
	impl   sdk.Watcher
	broker *plugin.GRPCBroker
	rt     Runtime
}

func (s *watcherServer) Run(stream pluginpb.Watcher_RunServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "first message must be start")
	}
	send := &lockedSender{stream: stream}
	done := func(err error) error {
		return send.send(&pluginpb.WatcherMessage{Msg: &pluginpb.WatcherMessage_Done{Done: &pluginpb.Done{Error: wire.ToPBError(err)}}})
	}
	// State first: the host serves it for this run, and a run ending on
	// its configuration then ends that service cleanly too.
	state, err := dialState(s.broker, start.GetStateBrokerId())
	if err != nil {
		return done(err)
	}
	defer state.conn.Close()
	if err := wire.LoadConfig(s.impl.Info().Config, s.rt.Instance, s.rt.Environ); err != nil {
		return done(err)
	}

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	host := &watcherHost{
		pluginHost: pluginHost{rt: s.rt, state: state},
		send:       send,
		waiting:    make(map[uint64]chan emitResult),
	}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		defer cancel()
		host.receive(stream)
	}()
	runErr := s.impl.Run(ctx, host)
	if ctx.Err() != nil && stream.Context().Err() != nil {
		// The host went away: nobody is left to tell.
		<-recvDone
		return nil
	}
	sendErr := done(runErr)
	cancel()
	<-recvDone
	return sendErr
}

// lockedSender serializes sends on a stream (gRPC streams allow one sender
// at a time).
type lockedSender struct {
	mu     sync.Mutex
	stream pluginpb.Watcher_RunServer
}

func (l *lockedSender) send(m *pluginpb.WatcherMessage) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stream.Send(m)
}

type emitResult struct {
	receipt sdk.Receipt
	err     error
}

// watcherHost implements WatcherHost inside the plugin process.
type watcherHost struct {
	pluginHost
	send *lockedSender

	mu      sync.Mutex
	seq     uint64
	waiting map[uint64]chan emitResult
	closed  bool
}

func (h *watcherHost) Emit(ctx context.Context, t sdk.Trigger, key string) (sdk.Receipt, error) {
	if err := t.Validate(); err != nil {
		return sdk.Receipt{}, err
	}
	ch := make(chan emitResult, 1)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return sdk.Receipt{}, fmt.Errorf("emit: %w: stream closed", sdk.ErrUnavailable)
	}
	h.seq++
	seq := h.seq
	h.waiting[seq] = ch
	h.mu.Unlock()

	parent, state := sdk.TraceContext(ctx)
	err := h.send.send(&pluginpb.WatcherMessage{Msg: &pluginpb.WatcherMessage_Emit{Emit: &pluginpb.Emit{
		Seq: seq, Trigger: wire.ToPBTrigger(&t), Key: key, Traceparent: parent, Tracestate: state,
	}}})
	if err != nil {
		h.forget(seq)
		return sdk.Receipt{}, fmt.Errorf("emit: %w: %w", sdk.ErrUnavailable, err)
	}
	select {
	case r := <-ch:
		return r.receipt, r.err
	case <-ctx.Done():
		h.forget(seq)
		return sdk.Receipt{}, ctx.Err()
	}
}

func (h *watcherHost) forget(seq uint64) {
	h.mu.Lock()
	delete(h.waiting, seq)
	h.mu.Unlock()
}

// receive dispatches the host's acks and rejections until the stream ends,
// then fails every Emit still waiting.
func (h *watcherHost) receive(stream pluginpb.Watcher_RunServer) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			break
		}
		var (
			seq uint64
			res emitResult
		)
		switch m := msg.GetMsg().(type) {
		case *pluginpb.HostMessage_Ack:
			seq, res.receipt = m.Ack.GetSeq(), sdk.Receipt{UUID: m.Ack.GetUuid(), Duplicate: m.Ack.GetDuplicate()}
		case *pluginpb.HostMessage_Reject:
			seq, res.err = m.Reject.GetSeq(), wire.FromPBError(m.Reject.GetError())
		default:
			continue
		}
		h.mu.Lock()
		ch, ok := h.waiting[seq]
		delete(h.waiting, seq)
		h.mu.Unlock()
		if ok {
			ch <- res
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for seq, ch := range h.waiting {
		ch <- emitResult{err: fmt.Errorf("emit: %w: host closed the stream", sdk.ErrUnavailable)}
		delete(h.waiting, seq)
	}
}

type pusherServer struct {
	pluginpb.UnimplementedPusherServer
	impl   sdk.Pusher
	broker *plugin.GRPCBroker
	rt     Runtime

	mu    sync.Mutex
	state *stateClient
}

func (s *pusherServer) Start(ctx context.Context, req *pluginpb.StartRequest) (*pluginpb.StartResponse, error) {
	// State first: the host serves it for this start, whatever the
	// configuration says.
	state, err := dialState(s.broker, req.GetStateBrokerId())
	if err != nil {
		return &pluginpb.StartResponse{Error: wire.ToPBError(err)}, nil
	}
	s.mu.Lock()
	if s.state != nil {
		s.state.conn.Close()
	}
	s.state = state
	s.mu.Unlock()
	if err := wire.LoadConfig(s.impl.Info().Config, s.rt.Instance, s.rt.Environ); err != nil {
		return &pluginpb.StartResponse{Error: wire.ToPBError(err)}, nil
	}
	err = s.impl.Start(ctx, &pluginHost{rt: s.rt, state: state})
	return &pluginpb.StartResponse{Error: wire.ToPBError(err)}, nil
}

func (s *pusherServer) Push(ctx context.Context, req *pluginpb.PushRequest) (*pluginpb.PushResponse, error) {
	// The host's push span, from the call's metadata: sdk.TraceContext
	// and OpenTelemetry's instrumentation find it in ctx.
	err := s.impl.Push(wire.IncomingTrace(ctx), wire.FromPBPushRequest(req))
	if errors.Is(err, sdk.ErrDelivered) {
		// A note, not an error: a host that predates notes sees a delivery.
		return &pluginpb.PushResponse{Note: err.Error()}, nil
	}
	return &pluginpb.PushResponse{Error: wire.ToPBError(err)}, nil
}
