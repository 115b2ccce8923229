"""The kit serving plugins as processes, against a host written from
go-plugin's side of the protocol (minihost). The Go hosts themselves run
Python plugins in host/pyplugins' end-to-end tests."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

from minihost import HERE, MiniHost, der_to_pem, plugin_env
from routing_plugin import _cert
from routing_plugin._pb import plugin_pb2 as pb

CONFIG = {"LABEL": "blue"}
HEALTH = "/grpc.health.v1.Health/Check"


class Raw:
    """A protobuf-free message type for the health service's bytes."""

    def __init__(self, b: bytes) -> None:
        self.b = b

    def SerializeToString(self) -> bytes:
        return self.b

    @classmethod
    def FromString(cls, b: bytes) -> "Raw":
        return cls(b)


def wait_until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


class ServeTest(unittest.TestCase):
    def start(self, kind: str, **kw) -> MiniHost:
        host = MiniHost(kind, **kw)
        self.addCleanup(host.close)
        self.assertTrue(host.handshake, f"no handshake; stderr: {host.stderr}")
        host.connect()
        return host

    def test_handshake_line(self) -> None:
        host = self.start("pusher", config=CONFIG)
        core, app, network, address, protocol, cert = host.handshake.split("|")
        self.assertEqual((core, app, network, protocol), ("1", "1", "unix", "grpc"))
        self.assertTrue(os.path.exists(address))
        self.assertNotIn("=", cert)
        ctx = ssl.create_default_context(cadata=der_to_pem(cert).decode())
        self.assertEqual(len(ctx.get_ca_certs()), 1)
        der = base64.b64decode(cert + "=" * (-len(cert) % 4))
        self.assertIn(b"localhost", der)

    def test_health_and_info(self) -> None:
        host = self.start("pusher", config=CONFIG)
        self.assertEqual(host.unary(HEALTH, Raw(b"\n\x06plugin"), Raw).b, b"\x08\x01")  # SERVING
        info = host.unary("/routing.plugin.v1.Plugin/Info", pb.InfoRequest(), pb.InfoResponse)
        self.assertEqual((info.name, info.kind, info.version, info.language), ("testpush", "pusher", "9.9.9", "python"))
        self.assertTrue(info.sdk_version)
        keys = {k.name: k for k in info.config}
        self.assertEqual(list(keys), ["LABEL", "API_KEY", "FAIL_START"])
        self.assertTrue(keys["LABEL"].required)
        self.assertTrue(keys["API_KEY"].secret)
        self.assertEqual(keys["FAIL_START"].default, "false")

    def test_push_outcomes_and_state_through_the_broker(self) -> None:
        host = self.start("pusher", config=CONFIG)
        host.serve_state(7)
        resp = host.unary("/routing.plugin.v1.Pusher/Start", pb.StartRequest(state_broker_id=7), pb.StartResponse)
        self.assertFalse(resp.HasField("error"), resp.error)
        self.assertEqual(host.state.data["started"], b"blue")

        def push(uuid: str, metadata: tuple[tuple[str, str], ...] | None = None) -> pb.PushResponse:
            req = pb.PushRequest(uuid=uuid, attempt=2, rows=[
                pb.Row(has_index=True, index=3, data=[pb.Field(key="od", value_json=b"1.50"),
                                                      pb.Field(key="name", value_json=b'"x"')]),
                pb.Row(data=[pb.Field(key="k", value_json=b"-1e-3")]),
            ])
            req.trigger.trigger.protocol = "PlateTransfer"
            return host.unary("/routing.plugin.v1.Pusher/Push", req, pb.PushResponse, metadata=metadata)

        self.assertEqual(push("run1"), pb.PushResponse())
        self.assertEqual(json.loads(host.state.data["pushed/run1"]), {
            "rows": ['{"od":1.50,"name":"x"}', '{"k":-1e-3}'], "indexes": [3, None], "attempt": 2,
            "trigger": "PlateTransfer", "traceparent": ""})
        # The gateway's push span, as gRPC metadata, reaches the request.
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        self.assertEqual(push("traced", (("traceparent", traceparent),)), pb.PushResponse())
        self.assertEqual(json.loads(host.state.data["pushed/traced"])["traceparent"], traceparent)
        self.assertEqual(push("note").note, "a note")
        self.assertEqual(push("skip").error.code, pb.ERROR_CODE_SKIPPED)
        self.assertEqual(push("perm").error.code, pb.ERROR_CODE_PERMANENT)
        boom = push("boom").error
        self.assertEqual((boom.code, boom.message), (pb.ERROR_CODE_UNSPECIFIED, "KeyError: 'x'"))
        # A plugin's own exception is logged with its traceback; printing is logged too.
        wait_until(lambda: any('"traceback"' in line and "KeyError" in line for line in host.stderr), what="traceback")
        wait_until(lambda: any('"@module": "stdout"' in line and "printed after the handshake" in line
                               for line in host.stderr), what="stdout line")
        for line in host.stderr:
            entry = json.loads(line)
            self.assertRegex(entry["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
            self.assertIn(entry["@level"], ("trace", "debug", "info", "warn", "error"))

    def test_start_errors(self) -> None:
        host = self.start("pusher", config={})
        host.serve_state(1)
        err = host.unary("/routing.plugin.v1.Pusher/Start", pb.StartRequest(state_broker_id=1), pb.StartResponse).error
        self.assertEqual(err.code, pb.ERROR_CODE_CONFIG)
        self.assertIn("PLUGIN_TEST_LABEL is required", err.message)

        host = self.start("pusher", config={"LABEL": "x", "FAIL_START": "true"})
        host.serve_state(1)
        err = host.unary("/routing.plugin.v1.Pusher/Start", pb.StartRequest(state_broker_id=1), pb.StartResponse).error
        self.assertEqual(err.message, "RuntimeError: calibration table missing")

        host = self.start("pusher", config=CONFIG)  # no State announced on the broker
        err = host.unary("/routing.plugin.v1.Pusher/Start", pb.StartRequest(state_broker_id=5), pb.StartResponse).error
        self.assertEqual(err.code, pb.ERROR_CODE_UNAVAILABLE)

    def run_watcher(self, host: MiniHost):
        host.serve_state(3)
        assert host.channel is not None
        run = host.channel.stream_stream("/routing.plugin.v1.Watcher/Run",
                                         request_serializer=pb.HostMessage.SerializeToString,
                                         response_deserializer=pb.WatcherMessage.FromString)
        out: queue.Queue = queue.Queue()
        out.put(pb.HostMessage(start=pb.Start(state_broker_id=3)))
        return out, run(iter(out.get, None))

    def test_watcher_emit_ack_reject(self) -> None:
        host = self.start("watcher", config=CONFIG)
        out, stream = self.run_watcher(host)
        first = next(stream)
        self.assertEqual(first.emit.key, "k1")
        self.assertEqual(json.loads(first.emit.trigger.spec_json), {"v": 1})
        self.assertEqual((first.emit.traceparent, first.emit.tracestate),
                         ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "w=1"))
        out.put(pb.HostMessage(ack=pb.Ack(seq=first.emit.seq, uuid="u1", duplicate=True)))
        second = next(stream)
        self.assertEqual(second.emit.trigger.protocol, "Rejected")
        out.put(pb.HostMessage(reject=pb.Reject(seq=second.emit.seq, error=pb.Error(
            code=pb.ERROR_CODE_INVALID, message="m", fields=[pb.FieldError(field="spec", reason="no")]))))
        wait_until(lambda: "rejected" in host.state.data, what="the rejection")
        self.assertEqual(host.state.data["receipt"], b"u1 True")
        self.assertEqual(host.state.data["rejected"], b"ValidationError: spec: no")
        stream.cancel()
        host.shutdown()
        self.assertEqual(host.proc.wait(5), 0)

    def test_watcher_failure_is_done_with_its_error(self) -> None:
        host = self.start("watcher", config={"LABEL": "return"})
        out, stream = self.run_watcher(host)
        out.put(pb.HostMessage(ack=pb.Ack(seq=next(stream).emit.seq, uuid="u1")))
        out.put(pb.HostMessage(ack=pb.Ack(seq=next(stream).emit.seq, uuid="u2")))
        done = next(stream)
        self.assertEqual(done.done.error.message, "RuntimeError: watcher gave up")

    def test_shutdown_exits(self) -> None:
        host = self.start("pusher", config=CONFIG)
        address = host.handshake.split("|")[3]
        host.shutdown()
        self.assertEqual(host.proc.wait(5), 0)
        self.assertFalse(os.path.exists(address), "the socket file is removed")

    def test_without_tls(self) -> None:
        host = self.start("pusher", config=CONFIG, tls=False)
        self.assertEqual(host.handshake.split("|")[5], "")
        info = host.unary("/routing.plugin.v1.Plugin/Info", pb.InfoRequest(), pb.InfoResponse)
        self.assertEqual(info.name, "testpush")

    def test_a_client_without_the_host_certificate_is_refused(self) -> None:
        host = self.start("pusher", config=CONFIG)
        parts = host.handshake.split("|")
        other = _cert.generate()
        creds = grpc.ssl_channel_credentials(root_certificates=der_to_pem(parts[5]), private_key=other.key_pem,
                                             certificate_chain=other.cert_pem)
        channel = grpc.secure_channel("unix:" + parts[3], creds, options=[("grpc.ssl_target_name_override", "localhost")])
        self.addCleanup(channel.close)
        info = channel.unary_unary("/routing.plugin.v1.Plugin/Info", request_serializer=pb.InfoRequest.SerializeToString,
                                   response_deserializer=pb.InfoResponse.FromString)
        with self.assertRaises(grpc.RpcError) as cm:
            info(pb.InfoRequest(), timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_not_started_by_a_host(self) -> None:
        proc = subprocess.run([sys.executable, os.path.join(HERE, "plugins.py"), "pusher"], capture_output=True,
                              env={"PYTHONPATH": os.path.dirname(HERE)}, timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, b"")
        self.assertIn(b"is a routing-layer plugin", proc.stderr)

    def test_exits_when_the_host_dies(self) -> None:
        # A parent that starts the plugin and is then killed (without the
        # death signal a Go host sets): the plugin sees its parent change.
        parent = subprocess.Popen(
            [sys.executable, "-c", "import subprocess, sys, time; p = subprocess.Popen(sys.argv[1:]); "
             "print(p.pid, flush=True); time.sleep(600)", sys.executable, os.path.join(HERE, "plugins.py"), "pusher"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=plugin_env("test", CONFIG, None))
        self.addCleanup(parent.wait)
        self.addCleanup(lambda: parent.poll() is None and parent.kill())
        assert parent.stdout is not None
        self.addCleanup(parent.stdout.close)
        pid = int(parent.stdout.readline())
        self.assertTrue(parent.stdout.readline().startswith(b"1|1|"))
        parent.send_signal(signal.SIGKILL)

        def gone() -> bool:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(") ")[1][0] in "ZX"
            except FileNotFoundError:
                return True

        wait_until(gone, 10, "the plugin to exit")


class SocketDirTest(unittest.TestCase):
    def test_socket_in_the_given_dir(self) -> None:
        d = tempfile.mkdtemp()
        host = MiniHost("pusher", config=CONFIG)
        self.addCleanup(host.close)
        self.assertTrue(host.handshake.split("|")[3].startswith(tempfile.gettempdir()))
        env = plugin_env("test", CONFIG, None)
        env["PLUGIN_UNIX_SOCKET_DIR"] = d
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "plugins.py"), "pusher"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        assert proc.stdout is not None
        self.addCleanup(proc.stdout.close)
        self.assertTrue(proc.stdout.readline().decode().split("|")[3].startswith(d + "/"))


if __name__ == "__main__":
    unittest.main()
