"""The host's side of go-plugin, enough to run a Python plugin in the tests:
launch with the magic cookie and the host's certificate, read the handshake,
connect over mutual TLS, serve State through the broker."""

from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import tempfile
import threading
from concurrent import futures
from typing import Any

import grpc

from routing_plugin import _cert
from routing_plugin._pb import grpc_broker_pb2, grpc_controller_pb2
from routing_plugin._pb import plugin_pb2 as pb
from routing_plugin.serve import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(HERE)


def plugin_env(instance: str, config: dict[str, str], cert_pem: bytes | None) -> dict[str, str]:
    env = {
        MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
        "PLUGIN_PROTOCOL_VERSIONS": "1",
        "ROUTING_PLUGIN_INSTANCE": instance,
        "ROUTING_PLUGIN_LOG_LEVEL": "debug",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": KIT,
    }
    if cert_pem:
        env["PLUGIN_CLIENT_CERT"] = cert_pem.decode()
    prefix = "PLUGIN_" + instance.upper().replace("-", "_") + "_"
    env.update({prefix + k: v for k, v in config.items()})
    return env


def der_to_pem(field: str) -> bytes:
    der = base64.b64decode(field + "=" * (-len(field) % 4))
    return _cert._pem("CERTIFICATE", der)


class StateServicer:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def handlers(self) -> grpc.GenericRpcHandler:
        u = grpc.unary_unary_rpc_method_handler
        return grpc.method_handlers_generic_handler("routing.plugin.v1.State", {
            "Get": u(self.get, pb.StateGetRequest.FromString, pb.StateGetResponse.SerializeToString),
            "Put": u(self.put, pb.StatePutRequest.FromString, pb.StatePutResponse.SerializeToString),
            "Delete": u(self.delete, pb.StateDeleteRequest.FromString, pb.StateDeleteResponse.SerializeToString),
            "List": u(self.list, pb.StateListRequest.FromString, pb.StateListResponse.SerializeToString),
        })

    def get(self, req: Any, _ctx: Any) -> Any:
        if req.key not in self.data:
            return pb.StateGetResponse(error=pb.Error(code=pb.ERROR_CODE_NOT_FOUND, message="not found"))
        return pb.StateGetResponse(value=self.data[req.key])

    def put(self, req: Any, _ctx: Any) -> Any:
        self.data[req.key] = req.value
        return pb.StatePutResponse()

    def delete(self, req: Any, _ctx: Any) -> Any:
        self.data.pop(req.key, None)
        return pb.StateDeleteResponse()

    def list(self, req: Any, _ctx: Any) -> Any:
        return pb.StateListResponse(entries=[pb.KeyValue(key=k, value=v) for k, v in sorted(self.data.items())
                                             if k.startswith(req.prefix)])


class MiniHost:
    """One plugin process and the host's connections to it."""

    def __init__(self, kind: str, instance: str = "test", config: dict[str, str] | None = None,
                 tls: bool = True, argv: list[str] | None = None):
        self.cert = _cert.generate() if tls else None
        argv = argv or [sys.executable, os.path.join(HERE, "plugins.py"), kind]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=plugin_env(instance, config or {}, self.cert.cert_pem if self.cert else None))
        self.stderr: list[str] = []
        self._stderr_done = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_done.start()
        self.handshake = self._readline(10)
        self.state = StateServicer()
        self._state_server: grpc.Server | None = None
        self._broker_out: queue.Queue[Any] = queue.Queue()
        self.channel: grpc.Channel | None = None

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode().rstrip("\n"))

    def _readline(self, timeout: float) -> str:
        box: list[bytes] = []
        assert self.proc.stdout is not None
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(timeout)
        return box[0].decode().strip() if box else ""

    def connect(self) -> None:
        parts = self.handshake.split("|")
        network, address = parts[2], parts[3]
        target = "unix:" + address if network == "unix" else address
        options = [("grpc.ssl_target_name_override", "localhost")]
        if self.cert:
            creds = grpc.ssl_channel_credentials(root_certificates=der_to_pem(parts[5]),
                                                 private_key=self.cert.key_pem, certificate_chain=self.cert.cert_pem)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target)
        broker = self.channel.stream_stream("/plugin.GRPCBroker/StartStream",
                                            request_serializer=grpc_broker_pb2.ConnInfo.SerializeToString,
                                            response_deserializer=grpc_broker_pb2.ConnInfo.FromString)
        self._broker_call = broker(iter(self._broker_out.get, None))

    def unary(self, method: str, req: Any, resp_type: Any, timeout: float = 10,
              metadata: tuple[tuple[str, str], ...] | None = None) -> Any:
        assert self.channel is not None
        call = self.channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp_type.FromString)
        return call(req, timeout=timeout, metadata=metadata)

    def serve_state(self, service_id: int) -> None:
        """Serves State on a new unix socket and announces it on the broker."""
        path = os.path.join(tempfile.mkdtemp(), "state.sock")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers([self.state.handlers()])
        parts = self.handshake.split("|")
        if self.cert:
            creds = grpc.ssl_server_credentials([(self.cert.key_pem, self.cert.cert_pem)],
                                                root_certificates=der_to_pem(parts[5]), require_client_auth=True)
            server.add_secure_port("unix:" + path, creds)
        else:
            server.add_insecure_port("unix:" + path)
        server.start()
        self._state_server = server
        self._broker_out.put(grpc_broker_pb2.ConnInfo(service_id=service_id, network="unix", address=path))

    def shutdown(self) -> None:
        self.unary("/plugin.GRPCController/Shutdown", grpc_controller_pb2.Empty(), grpc_controller_pb2.Empty)

    def close(self) -> None:
        self._broker_out.put(None)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._stderr_done.join(5)
        if self.channel is not None:
            self.channel.close()
        if self._state_server is not None:
            self._state_server.stop(0)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
