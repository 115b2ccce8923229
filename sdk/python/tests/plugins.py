"""Plugins the serving tests run as processes: python3 plugins.py pusher|watcher."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from routing_plugin import Host, Info, Permanent, PushRequest, Skip, WatcherHost, serve_pusher, serve_watcher, setting


@dataclass
class Config:
    label: str = setting(required=True, help="a label")
    api_key: str = setting(help="looks secret by its name")
    fail_start: bool = setting(default=False)


class TestPusher:
    def __init__(self) -> None:
        self.cfg = Config()
        self.host: Host | None = None

    def info(self) -> Info:
        return Info(name="testpush", version="9.9.9", description="pushes for the tests", config=self.cfg)

    def start(self, host: Host) -> None:
        if self.cfg.fail_start:
            raise RuntimeError("calibration table missing")
        print("printed after the handshake")
        self.host = host
        host.state.put("started", self.cfg.label)

    def push(self, request: PushRequest) -> str | None:
        if request.uuid == "skip":
            raise Skip("not mine")
        if request.uuid == "perm":
            raise Permanent("never")
        if request.uuid == "boom":
            raise KeyError("x")
        assert self.host is not None
        self.host.state.put("pushed/" + request.uuid, json.dumps({
            "rows": [row.data_json().decode() for row in request.rows],
            "indexes": [row.index for row in request.rows],
            "attempt": request.attempt,
            "trigger": request.trigger.protocol if request.trigger else None,
            "traceparent": request.traceparent,
        }))
        return "a note" if request.uuid == "note" else None


class TestWatcher:
    def __init__(self) -> None:
        self.cfg = Config()

    def info(self) -> Info:
        return Info(name="testwatch", version="1.0.0", config=self.cfg)

    def run(self, host: WatcherHost) -> None:
        receipt = host.emit({"apiVersion": "OT-2/v1alpha1", "protocol": "P", "spec": {"v": 1}}, key="k1",
                            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate="w=1")
        host.state.put("receipt", f"{receipt.uuid} {receipt.duplicate}")
        try:
            host.emit({"apiVersion": "OT-2/v1alpha1", "protocol": "Rejected", "spec": {"v": 1}})
        except Exception as err:  # noqa: BLE001 - recorded for the test
            host.state.put("rejected", f"{type(err).__name__}: {err}")
        if self.cfg.label == "return":
            raise RuntimeError("watcher gave up")
        host.stopping.wait()


if __name__ == "__main__":
    if sys.argv[1] == "pusher":
        serve_pusher(TestPusher())
    serve_watcher(TestWatcher())
