"""Serving a plugin to its host: go-plugin's protocol over gRPC.

The host (control-tower or data-gateway) starts the plugin with a magic
cookie and, with AutoMTLS, its certificate in PLUGIN_CLIENT_CERT. The
plugin listens on a unix socket, prints one handshake line on stdout

    1|1|unix|/tmp/plugin123|grpc|<its certificate, base64 DER without padding>

(go-plugin's core protocol version, the app protocol version, network,
address, protocol, certificate) and serves over mutual TLS: the routing
services (Plugin, and Pusher or Watcher), the gRPC health service,
go-plugin's controller (Shutdown), stdio stream and broker. The host
serves State on a connection of its own, announced over the broker's
stream; the plugin dials it when Start says which.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures
from typing import Any, Callable, Iterator, NoReturn

import grpc

from . import __version__
from . import _cert
from ._convert import from_pb_error, from_pb_push_request, to_pb_error, to_pb_trigger
from ._pb import grpc_broker_pb2, grpc_controller_pb2, grpc_stdio_pb2
from ._pb import plugin_pb2 as pb
from .config import config_keys, load_config
from .errors import NotFound, PluginError, Unavailable
from .host import Host, WatcherHost, value_bytes
from .log import StdoutToLog, configure, level_from_name
from .plugin import Info, Pusher, Watcher
from .types import Receipt, Trigger

#: The plugin protocol version the kit speaks (go-plugin's app protocol version).
PROTOCOL_VERSION = 1
#: go-plugin's core protocol version.
CORE_PROTOCOL_VERSION = 1
#: The handshake's magic cookie, shared with the Go SDK (sdk.Handshake).
MAGIC_COOKIE_KEY = "ROUTING_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d2c6a4f0-routing-layer-plugin"
#: The variables through which the host passes the instance name and log level.
INSTANCE_ENV = "ROUTING_PLUGIN_INSTANCE"
LOG_LEVEL_ENV = "ROUTING_PLUGIN_LOG_LEVEL"
#: Bound on one gRPC message between host and plugin (sdk.MaxMessageBytes).
MAX_MESSAGE_BYTES = 64 << 20
#: The health service name go-plugin asks about.
HEALTH_SERVICE = "plugin"
#: How long a State call may take.
STATE_TIMEOUT = 30.0

LANGUAGE = "python"

_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def serve_pusher(pusher: Pusher) -> NoReturn:
    """Serves pusher to the data-gateway; call it from main. It returns only
    by exiting the process when the host stops the plugin."""
    _serve("pusher", pusher)


def serve_watcher(watcher: Watcher) -> NoReturn:
    """Serves watcher to the control-tower; call it from main. It returns
    only by exiting the process when the host stops the plugin."""
    _serve("watcher", watcher)


class Runtime:
    """What a plugin knows about where it runs."""

    def __init__(self, kind: str, environ: dict[str, str], argv0: str):
        self.kind = kind
        self.environ = environ
        name = os.path.basename(argv0)
        for suffix in (".pyz", ".py"):
            name = name.removesuffix(suffix)
        self.instance = environ.get(INSTANCE_ENV) or name.removeprefix(kind + "-")
        self.log = configure(level_from_name(environ.get(LOG_LEVEL_ENV)))


def _serve(kind: str, plugin: Any) -> NoReturn:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(f"{os.path.basename(sys.argv[0])} is a routing-layer plugin: install it in the "
                         "service's PLUGINS_DIR, the service runs it.\n")
        sys.exit(1)
    # A Ctrl-C meant for the host is not for its plugins: the host stops them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rt = Runtime(kind, dict(os.environ), sys.argv[0])
    threading.Thread(target=_exit_with_parent, args=(os.getppid(), 1.0), name="parent-watch", daemon=True).start()

    server = PluginServer(kind, plugin, rt, os.environ.get("PLUGIN_CLIENT_CERT", ""))
    line = server.start(os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    out = sys.stdout
    out.write(line + "\n")
    out.flush()
    # stdout is the handshake's: from now on, what is printed there is logged.
    sys.stdout = StdoutToLog()
    try:
        os.dup2(2, 1)
    except OSError:
        pass
    server.wait()
    sys.stdout.flush()
    logging.shutdown()
    os._exit(0)


def _exit_with_parent(ppid: int, every: float) -> None:
    """Ends the process when the host dies, even by SIGKILL: the process is
    then re-parented and its parent pid changes."""
    if ppid <= 1:
        return
    while True:
        time.sleep(every)
        if os.getppid() != ppid:
            logging.getLogger("plugin").error("host process is gone; exiting")
            os._exit(3)


class _TLS:
    """The plugin's certificate and the host's, for both directions."""

    def __init__(self, host_cert_pem: str):
        self.cert = _cert.generate()
        self.host_cert = host_cert_pem.encode()

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.cert.key_pem, self.cert.cert_pem)],
                                           root_certificates=self.host_cert, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.host_cert, private_key=self.cert.key_pem,
                                            certificate_chain=self.cert.cert_pem)


class PluginServer:
    """The plugin's gRPC server and its go-plugin plumbing."""

    def __init__(self, kind: str, plugin: Any, rt: Runtime, host_cert_pem: str = ""):
        self.kind = kind
        self.plugin = plugin
        self.rt = rt
        self.tls = _TLS(host_cert_pem) if host_cert_pem else None
        self.broker = Broker(self.tls)
        self.stopped = threading.Event()
        self._socket: str | None = None
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="grpc"),
                                  options=_GRPC_OPTIONS)
        self.server.add_generic_rpc_handlers(self._handlers())

    def start(self, socket_dir: str | None = None) -> str:
        """Starts serving and returns the handshake line."""
        creds = self.tls.server_credentials() if self.tls else None
        network, address = "unix", os.path.join(socket_dir or tempfile.gettempdir(), "plugin" + secrets.token_hex(6))
        target = "unix:" + address
        try:
            port = self.server.add_secure_port(target, creds) if creds else self.server.add_insecure_port(target)
            if port == 0:
                raise RuntimeError(f"cannot listen on {address}")
            self._socket = address
        except RuntimeError:
            network = "tcp"
            target = "127.0.0.1:0"
            port = self.server.add_secure_port(target, creds) if creds else self.server.add_insecure_port(target)
            address = f"127.0.0.1:{port}"
        self.server.start()
        cert = self.tls.cert.handshake_field() if self.tls else ""
        return f"{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|{network}|{address}|grpc|{cert}"

    def wait(self) -> None:
        """Blocks until the host asks the plugin to shut down, then stops."""
        self.stopped.wait()
        self.server.stop(grace=0.25).wait()
        if self._socket:
            try:
                os.unlink(self._socket)
            except OSError:
                pass

    def shutdown(self) -> None:
        self.stopped.set()

    # --- services ---

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        unary = grpc.unary_unary_rpc_method_handler
        handlers = [
            grpc.method_handlers_generic_handler("routing.plugin.v1.Plugin", {
                "Info": unary(self._info, pb.InfoRequest.FromString, pb.InfoResponse.SerializeToString),
            }),
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                "Check": unary(_health_check, _identity, _identity),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCController", {
                "Shutdown": unary(self._shutdown, grpc_controller_pb2.Empty.FromString,
                                  grpc_controller_pb2.Empty.SerializeToString),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCStdio", {
                "StreamStdio": grpc.unary_stream_rpc_method_handler(
                    self._stdio, _identity, grpc_stdio_pb2.StdioData.SerializeToString),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCBroker", {
                "StartStream": grpc.stream_stream_rpc_method_handler(
                    self.broker.start_stream, grpc_broker_pb2.ConnInfo.FromString,
                    grpc_broker_pb2.ConnInfo.SerializeToString),
            }),
        ]
        if self.kind == "pusher":
            pusher = PusherService(self.plugin, self.rt, self.broker)
            handlers.append(grpc.method_handlers_generic_handler("routing.plugin.v1.Pusher", {
                "Start": unary(pusher.start, pb.StartRequest.FromString, pb.StartResponse.SerializeToString),
                "Push": unary(pusher.push, pb.PushRequest.FromString, pb.PushResponse.SerializeToString),
            }))
        else:
            watcher = WatcherService(self.plugin, self.rt, self.broker)
            handlers.append(grpc.method_handlers_generic_handler("routing.plugin.v1.Watcher", {
                "Run": grpc.stream_stream_rpc_method_handler(
                    watcher.run, pb.HostMessage.FromString, pb.WatcherMessage.SerializeToString),
            }))
        return handlers

    def _info(self, _req: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        try:
            info: Info = self.plugin.info()
            keys = config_keys(info.config)
        except Exception as err:  # noqa: BLE001 - reported to the host
            self.rt.log.error("info failed", exc_info=True)
            context.abort(grpc.StatusCode.INTERNAL, f"info: {err!r}")
        return pb.InfoResponse(
            name=info.name, kind=self.kind, version=info.version, sdk_version=__version__,
            description=info.description, language=LANGUAGE,
            config=[pb.ConfigKey(name=k.name, required=k.required, secret=k.secret, default=k.default, help=k.help)
                    for k in keys],
        )

    def _shutdown(self, _req: Any, _context: grpc.ServicerContext) -> grpc_controller_pb2.Empty:
        self.shutdown()
        return grpc_controller_pb2.Empty()

    def _stdio(self, _req: bytes, context: grpc.ServicerContext) -> Iterator[grpc_stdio_pb2.StdioData]:
        # Output reaches the host through the process's stderr (the log) and
        # nothing is written to stdout: the stream stays open, empty, as
        # long as the connection.
        ended = threading.Event()
        context.add_callback(ended.set)
        while not ended.wait(1.0) and not self.stopped.is_set():
            pass
        return iter(())


def _identity(b: bytes) -> bytes:
    return b


def _health_check(request: bytes, _context: grpc.ServicerContext) -> bytes:
    """grpc.health.v1.Health/Check, encoded by hand: the request is field 1
    (service, a string), the answer field 1 (status, an enum)."""
    service = _proto_string_field(request, 1)
    if service in ("", HEALTH_SERVICE):
        return b"\x08\x01"  # SERVING
    return b"\x08\x03"  # SERVICE_UNKNOWN


def _proto_string_field(msg: bytes, number: int) -> str:
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            b = msg[i]
            i += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    try:
        while i < len(msg):
            tag = varint()
            wire = tag & 7
            if wire == 0:
                varint()
            elif wire == 2:
                n = varint()
                value, i = msg[i : i + n], i + n
                if tag >> 3 == number:
                    return value.decode()
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            else:
                break
    except (IndexError, UnicodeDecodeError):
        pass
    return ""


class Broker:
    """go-plugin's connection broker, plugin side: the host announces the
    connections it serves (ConnInfo: service id, network, address) on one
    stream; dial waits for the announcement of an id and connects."""

    def __init__(self, tls: _TLS | None):
        self.tls = tls
        self._cond = threading.Condition()
        self._conns: dict[int, grpc_broker_pb2.ConnInfo] = {}

    def start_stream(self, requests: Iterator[grpc_broker_pb2.ConnInfo],
                     _context: grpc.ServicerContext) -> Iterator[grpc_broker_pb2.ConnInfo]:
        for info in requests:
            if info.HasField("knock"):
                continue  # multiplexing, which the hosts do not ask for
            with self._cond:
                self._conns[info.service_id] = info
                self._cond.notify_all()
        return
        yield  # a generator: the plugin announces nothing

    def dial(self, service_id: int, timeout: float = 5.0) -> grpc.Channel:
        """A channel to the connection the host announced as service_id."""
        with self._cond:
            if not self._cond.wait_for(lambda: service_id in self._conns, timeout):
                raise Unavailable(f"broker: no connection info for id {service_id} within {timeout:g}s")
            info = self._conns.pop(service_id)
        if info.network == "unix":
            target = "unix:" + info.address
        elif info.network == "tcp":
            target = info.address
        else:
            raise Unavailable(f"broker: unknown network {info.network!r}")
        options = _GRPC_OPTIONS + [("grpc.ssl_target_name_override", "localhost"), ("grpc.default_authority", "localhost")]
        if self.tls is None:
            return grpc.insecure_channel(target, options=options)
        return grpc.secure_channel(target, self.tls.channel_credentials(), options=options)


class StateClient:
    """The host's State, reached through the broker."""

    def __init__(self, channel: grpc.Channel, timeout: float = STATE_TIMEOUT):
        self.channel = channel
        self.timeout = timeout
        method = lambda name, req, resp: channel.unary_unary(  # noqa: E731
            f"/routing.plugin.v1.State/{name}", request_serializer=req.SerializeToString,
            response_deserializer=resp.FromString)
        self._get = method("Get", pb.StateGetRequest, pb.StateGetResponse)
        self._put = method("Put", pb.StatePutRequest, pb.StatePutResponse)
        self._delete = method("Delete", pb.StateDeleteRequest, pb.StateDeleteResponse)
        self._list = method("List", pb.StateListRequest, pb.StateListResponse)

    def _call(self, op: str, fn: Callable[..., Any], req: Any) -> Any:
        try:
            resp = fn(req, timeout=self.timeout)
        except grpc.RpcError as err:
            raise Unavailable(f"state {op}: {err.code().name}: {err.details()}") from None
        if resp.HasField("error"):
            raise from_pb_error(resp.error)  # type: ignore[misc]
        return resp

    def get(self, key: str) -> bytes | None:
        try:
            return self._call("get", self._get, pb.StateGetRequest(key=key)).value
        except NotFound:
            return None

    def put(self, key: str, value: bytes | str) -> None:
        self._call("put", self._put, pb.StatePutRequest(key=key, value=value_bytes(value)))

    def delete(self, key: str) -> None:
        self._call("delete", self._delete, pb.StateDeleteRequest(key=key))

    def list(self, prefix: str = "") -> list[tuple[str, bytes]]:
        resp = self._call("list", self._list, pb.StateListRequest(prefix=prefix))
        return [(e.key, e.value) for e in resp.entries]

    def close(self) -> None:
        self.channel.close()


def _failure(rt: Runtime, what: str, err: BaseException, **fields: Any) -> None:
    """Logs a plugin's own exception with its traceback; the kit's error
    classes are outcomes and are not logged."""
    if not isinstance(err, PluginError):
        rt.log.error(what, exc_info=(type(err), err, err.__traceback__), extra=fields)


class PusherService:
    """routing.plugin.v1.Pusher, serving a Pusher."""

    def __init__(self, pusher: Pusher, rt: Runtime, broker: Broker):
        self.pusher = pusher
        self.rt = rt
        self.broker = broker
        self._lock = threading.Lock()
        self._state: StateClient | None = None

    def start(self, req: pb.StartRequest, _context: grpc.ServicerContext) -> pb.StartResponse:
        try:
            load_config(self.pusher.info().config, self.rt.instance, self.rt.environ)
            state = StateClient(self.broker.dial(req.state_broker_id))
            with self._lock:
                if self._state is not None:
                    self._state.close()
                self._state = state
            start = getattr(self.pusher, "start", None)
            if start is not None:
                start(Host(self.rt.instance, self.rt.log, state))
        except Exception as err:  # noqa: BLE001 - reported to the host
            _failure(self.rt, "start failed", err)
            return pb.StartResponse(error=to_pb_error(err))
        return pb.StartResponse()

    def push(self, req: pb.PushRequest, context: grpc.ServicerContext) -> pb.PushResponse:
        try:
            request = from_pb_push_request(req)
            # The gateway's push span travels as gRPC metadata.
            for key, value in context.invocation_metadata() or ():
                if key in ("traceparent", "tracestate") and isinstance(value, str):
                    setattr(request, key, value)
            note = self.pusher.push(request)
        except Exception as err:  # noqa: BLE001 - the outcome crosses the wire
            _failure(self.rt, "push failed", err, uuid=req.uuid, attempt=req.attempt)
            return pb.PushResponse(error=to_pb_error(err))
        return pb.PushResponse(note=note if isinstance(note, str) else "")


_END = object()


class _StreamWatcherHost(WatcherHost):
    """The WatcherHost of a Run stream: emissions go out as Emit messages
    and wait for the Ack or Reject of their seq."""

    def __init__(self, rt: Runtime, state: StateClient, out: "queue.Queue[Any]"):
        super().__init__(rt.instance, rt.log, state)
        self._out = out
        self._lock = threading.Lock()
        self._seq = 0
        self._waiting: dict[int, list[Any]] = {}
        self._closed = False

    def _emit(self, trigger: Trigger, key: str, timeout: float | None,
              traceparent: str = "", tracestate: str = "") -> Receipt:
        slot: list[Any] = []
        ready = threading.Event()
        with self._lock:
            if self._closed:
                raise Unavailable("emit: stream closed")
            self._seq += 1
            seq = self._seq
            self._waiting[seq] = [slot, ready]
        self._out.put(pb.WatcherMessage(emit=pb.Emit(seq=seq, trigger=to_pb_trigger(trigger), key=key,
                                                     traceparent=traceparent, tracestate=tracestate)))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.stopping.is_set() or (deadline is not None and time.monotonic() > deadline):
                with self._lock:
                    self._waiting.pop(seq, None)
                if ready.is_set():
                    break
                raise Unavailable("emit: the watcher is stopping" if self.stopping.is_set()
                                  else f"emit: no answer within {timeout:g}s")
        result = slot[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def receive(self, requests: Iterator[pb.HostMessage]) -> None:
        """Dispatches the host's answers until the stream ends, then fails
        every emission still waiting."""
        try:
            for msg in requests:
                which = msg.WhichOneof("msg")
                if which == "ack":
                    seq, result = msg.ack.seq, Receipt(msg.ack.uuid, msg.ack.duplicate)
                elif which == "reject":
                    seq, result = msg.reject.seq, from_pb_error(msg.reject.error)
                else:
                    continue
                with self._lock:
                    waiter = self._waiting.pop(seq, None)
                if waiter:
                    waiter[0].append(result)
                    waiter[1].set()
        except grpc.RpcError:
            pass
        finally:
            with self._lock:
                self._closed = True
                waiting, self._waiting = self._waiting, {}
            for slot, ready in waiting.values():
                slot.append(Unavailable("emit: host closed the stream"))
                ready.set()
            self.stopping.set()


class WatcherService:
    """routing.plugin.v1.Watcher, serving a Watcher."""

    def __init__(self, watcher: Watcher, rt: Runtime, broker: Broker):
        self.watcher = watcher
        self.rt = rt
        self.broker = broker

    def run(self, requests: Iterator[pb.HostMessage], context: grpc.ServicerContext) -> Iterator[pb.WatcherMessage]:
        first = next(requests, None)
        if first is None or first.WhichOneof("msg") != "start":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be start")

        def done(err: BaseException | None) -> pb.WatcherMessage:
            return pb.WatcherMessage(done=pb.Done(error=to_pb_error(err)))

        try:
            load_config(self.watcher.info().config, self.rt.instance, self.rt.environ)
            state = StateClient(self.broker.dial(first.start.state_broker_id))
        except Exception as err:  # noqa: BLE001 - reported to the host
            _failure(self.rt, "start failed", err)
            yield done(err)
            return
        out: queue.Queue[Any] = queue.Queue()
        host = _StreamWatcherHost(self.rt, state, out)
        context.add_callback(host.stopping.set)
        threading.Thread(target=host.receive, args=(requests,), name="watcher-acks", daemon=True).start()
        result: list[BaseException | None] = [None]

        def run() -> None:
            try:
                self.watcher.run(host)
            except BaseException as err:  # noqa: BLE001 - reported to the host
                _failure(self.rt, "run failed", err)
                result[0] = err
            finally:
                out.put(_END)

        threading.Thread(target=run, name="watcher-run", daemon=True).start()
        try:
            while True:
                try:
                    item = out.get(timeout=0.5)
                except queue.Empty:
                    if not context.is_active():
                        return  # the host is gone; a run ignoring stopping is left behind
                    continue
                if item is _END:
                    break
                yield item
            if context.is_active():
                yield done(result[0])
        finally:
            state.close()
