package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routinglayer/routing/sdk/internal/pluginpb"
)

// Runtime is what a plugin knows about where it runs.
type Runtime struct {
	// Instance is the instance name, from the plugin's file name.
	Instance string
	// Environ holds the variables the plugin's configuration is read from.
	Environ map[string]string
	// Logger is the plugin's logger.
	Logger hclog.Logger
}

// NewWatcherPlugin returns the go-plugin adapter that serves w. ServeWatcher
// uses it; test harnesses (sdktest) pass it to go-plugin's in-process
// TestPluginGRPCConn.
func NewWatcherPlugin(w Watcher, rt Runtime) plugin.Plugin {
	return &watcherPlugin{impl: w, rt: rt}
}

// NewPusherPlugin returns the go-plugin adapter that serves p; see
// NewWatcherPlugin.
func NewPusherPlugin(p Pusher, rt Runtime) plugin.Plugin {
	return &pusherPlugin{impl: p, rt: rt}
}

// watcherPlugin is the go-plugin adapter of a watcher. impl is nil on the
// host side.
type watcherPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Watcher
	rt   Runtime
}

func (p *watcherPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, &infoServer{info: p.impl.Info, kind: KindWatcher})
	pluginpb.RegisterWatcherServer(s, &watcherServer{impl: p.impl, broker: broker, rt: p.rt})
	return nil
}

func (p *watcherPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &watcherClient{
		infoClient: infoClient{client: pluginpb.NewPluginClient(conn)},
		watcher:    pluginpb.NewWatcherClient(conn),
		broker:     broker,
	}, nil
}

// pusherPlugin is the go-plugin adapter of a pusher. impl is nil on the
// host side.
type pusherPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Pusher
	rt   Runtime
}

func (p *pusherPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, &infoServer{info: p.impl.Info, kind: KindPusher})
	pluginpb.RegisterPusherServer(s, &pusherServer{impl: p.impl, broker: broker, rt: p.rt})
	return nil
}

func (p *pusherPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &pusherClient{
		infoClient: infoClient{client: pluginpb.NewPluginClient(conn)},
		pusher:     pluginpb.NewPusherClient(conn),
		broker:     broker,
	}, nil
}

// --- plugin side ---

type infoServer struct {
	pluginpb.UnimplementedPluginServer
	info func() Info
	kind Kind
}

func (s *infoServer) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return toPBInfo(s.info(), s.kind), nil
}

// pluginHost is the Host a plugin's code sees.
type pluginHost struct {
	rt    Runtime
	state State
}

func (h *pluginHost) Logger() hclog.Logger { return h.rt.Logger }
func (h *pluginHost) State() State         { return h.state }
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
	impl   Watcher
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
		return send.send(&pluginpb.WatcherMessage{Msg: &pluginpb.WatcherMessage_Done{Done: &pluginpb.Done{Error: toPBError(err)}}})
	}
	info := s.impl.Info()
	if err := LoadConfig(info.Config, s.rt.Instance, s.rt.Environ); err != nil {
		return done(err)
	}
	state, err := dialState(s.broker, start.GetStateBrokerId())
	if err != nil {
		return done(err)
	}
	defer state.conn.Close()

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
	receipt Receipt
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

func (h *watcherHost) Emit(ctx context.Context, t Trigger, opts ...EmitOption) (Receipt, error) {
	var o emitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := t.Validate(); err != nil {
		return Receipt{}, err
	}
	ch := make(chan emitResult, 1)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return Receipt{}, fmt.Errorf("emit: %w: stream closed", ErrUnavailable)
	}
	h.seq++
	seq := h.seq
	h.waiting[seq] = ch
	h.mu.Unlock()

	err := h.send.send(&pluginpb.WatcherMessage{Msg: &pluginpb.WatcherMessage_Emit{Emit: &pluginpb.Emit{
		Seq: seq, Trigger: toPBTrigger(&t), Key: o.key,
	}}})
	if err != nil {
		h.forget(seq)
		return Receipt{}, fmt.Errorf("emit: %w: %w", ErrUnavailable, err)
	}
	select {
	case r := <-ch:
		return r.receipt, r.err
	case <-ctx.Done():
		h.forget(seq)
		return Receipt{}, ctx.Err()
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
			seq, res.receipt = m.Ack.GetSeq(), Receipt{UUID: m.Ack.GetUuid(), Duplicate: m.Ack.GetDuplicate()}
		case *pluginpb.HostMessage_Reject:
			seq, res.err = m.Reject.GetSeq(), fromPBError(m.Reject.GetError())
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
		ch <- emitResult{err: fmt.Errorf("emit: %w: host closed the stream", ErrUnavailable)}
		delete(h.waiting, seq)
	}
}

type pusherServer struct {
	pluginpb.UnimplementedPusherServer
	impl   Pusher
	broker *plugin.GRPCBroker
	rt     Runtime

	mu    sync.Mutex
	state *stateClient
}

func (s *pusherServer) Start(ctx context.Context, req *pluginpb.StartRequest) (*pluginpb.StartResponse, error) {
	if err := LoadConfig(s.impl.Info().Config, s.rt.Instance, s.rt.Environ); err != nil {
		return &pluginpb.StartResponse{Error: toPBError(err)}, nil
	}
	state, err := dialState(s.broker, req.GetStateBrokerId())
	if err != nil {
		return &pluginpb.StartResponse{Error: toPBError(err)}, nil
	}
	s.mu.Lock()
	if s.state != nil {
		s.state.conn.Close()
	}
	s.state = state
	s.mu.Unlock()
	err = s.impl.Start(ctx, &pluginHost{rt: s.rt, state: state})
	return &pluginpb.StartResponse{Error: toPBError(err)}, nil
}

func (s *pusherServer) Push(ctx context.Context, req *pluginpb.PushRequest) (*pluginpb.PushResponse, error) {
	err := s.impl.Push(ctx, fromPBPushRequest(req))
	if errors.Is(err, ErrDelivered) {
		// A note, not an error: a host that predates notes sees a delivery.
		return &pluginpb.PushResponse{Note: err.Error()}, nil
	}
	return &pluginpb.PushResponse{Error: toPBError(err)}, nil
}

// --- host side ---

type infoClient struct {
	client pluginpb.PluginClient
}

func (c *infoClient) Info(ctx context.Context) (PluginInfo, error) {
	resp, err := c.client.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return PluginInfo{}, transportError("info", err)
	}
	return fromPBInfo(resp), nil
}

// serveState serves state to the plugin on a new broker id. stop ends it.
func serveState(broker *plugin.GRPCBroker, state State) (id uint32, stop func()) {
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

func (c *watcherClient) Run(ctx context.Context, sink TriggerSink, state State) error {
	id, stop := serveState(c.broker, state)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.watcher.Run(ctx)
	if err != nil {
		return transportError("run", err)
	}
	if err := stream.Send(&pluginpb.HostMessage{Msg: &pluginpb.HostMessage_Start{Start: &pluginpb.Start{StateBrokerId: id}}}); err != nil {
		return transportError("run", err)
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
			return transportError("run", err)
		}
		switch m := msg.GetMsg().(type) {
		case *pluginpb.WatcherMessage_Done:
			if err := fromPBError(m.Done.GetError()); err != nil {
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
	receipt, err := sink.Accept(ctx, Emission{Trigger: fromPBTrigger(e.GetTrigger()), Key: e.GetKey()})
	if err != nil {
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return &pluginpb.HostMessage{Msg: &pluginpb.HostMessage_Reject{Reject: &pluginpb.Reject{
			Seq: e.GetSeq(), Error: toPBError(err),
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

func (c *pusherClient) Start(ctx context.Context, state State) error {
	id, stop := serveState(c.broker, state)
	c.mu.Lock()
	if c.stopState != nil {
		c.stopState()
	}
	c.stopState = stop
	c.mu.Unlock()
	resp, err := c.pusher.Start(ctx, &pluginpb.StartRequest{StateBrokerId: id})
	if err != nil {
		return transportError("start", err)
	}
	return fromPBError(resp.GetError())
}

func (c *pusherClient) Push(ctx context.Context, req PushRequest) error {
	return c.push(ctx, toPBPushRequest(&req))
}

func (c *pusherClient) PushEncoded(ctx context.Context, req PushRequest, rows EncodedRows) error {
	if len(req.Rows) > 0 {
		return errors.New("push: rows given both decoded and encoded")
	}
	return c.push(ctx, withRows(toPBPushRequest(&req), rows))
}

func (c *pusherClient) push(ctx context.Context, msg *pluginpb.PushRequest) error {
	resp, err := c.pusher.Push(ctx, msg)
	if err != nil {
		return transportError("push", err)
	}
	if resp.GetError() == nil {
		return Delivered(resp.GetNote())
	}
	return fromPBError(resp.GetError())
}

// transportError maps a gRPC transport failure to the contract's errors: a
// broken connection is ErrPluginExited, a deadline stays a deadline.
func transportError(op string, err error) error {
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("%s: %w", op, context.Canceled)
	case codes.Unavailable, codes.Internal, codes.Unknown:
		return fmt.Errorf("%s: %w: %v", op, ErrPluginExited, status.Convert(err).Message())
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}
