"""A fake host to unit-test a plugin in-process, without a service.

    host = FakeHost()
    pusher = host.start_pusher(JsonlPusher(), config={"DIR": out})
    pusher.push("run1", [Row.from_json('{"index": 0, "data": {"od": 0.42}}')])

    run = host.run_watcher(FileDropWatcher(), config={"DIR": inbox})
    emitted = host.wait_triggers(1, timeout=5)
    run.stop()

Configuration is loaded from config (keys without the PLUGIN_<NAME>_
prefix) as the host's environment would give it. Requests, triggers and
errors go through the same conversions as on the wire, so a value or an
exception that would not cross it does not cross here either. The host
validates emitted triggers as the control-tower does, stores one trigger
per idempotency key and keeps State in memory: run a watcher again on the
same FakeHost to test a restart.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from ._convert import (
    from_pb_error,
    from_pb_push_request,
    from_pb_trigger,
    to_pb_error,
    to_pb_push_request,
    to_pb_trigger,
)
from .config import env_prefix, load_config
from .errors import Unavailable
from .host import Host, WatcherHost, value_bytes
from .plugin import Pusher, Watcher
from .types import PushRequest, Receipt, Row, StoredTrigger, Trigger

__all__ = ["FakeHost", "MemoryState", "Emitted", "PusherUnderTest", "WatcherRun"]


class MemoryState:
    """State kept in a dict."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: bytes | str) -> None:
        with self._lock:
            self._data[key] = value_bytes(value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def list(self, prefix: str = "") -> list[tuple[str, bytes]]:
        with self._lock:
            return sorted((k, v) for k, v in self._data.items() if k.startswith(prefix))


@dataclass(frozen=True)
class Emitted:
    """One emission the host answered: the trigger as stored (uuid set),
    its key and the receipt the watcher got."""

    trigger: Trigger
    key: str
    receipt: Receipt


def _environ(instance: str, config: dict[str, str] | None) -> dict[str, str]:
    prefix = env_prefix(instance)
    return {prefix + k: v for k, v in (config or {}).items()}


def _over_the_wire(err: Exception) -> Exception:
    """err as the host would see it."""
    return from_pb_error(to_pb_error(err)) or err


class PusherUnderTest:
    """A started pusher; push calls it as the data-gateway would."""

    def __init__(self, pusher: Pusher):
        self.pusher = pusher

    def push(self, uuid: str, rows: list[Row], trigger: StoredTrigger | None = None, attempt: int = 1) -> str | None:
        """Pushes rows and returns the plugin's note (None for a plain
        delivery), or raises what the host would see: Skip, Permanent, or
        PluginError for any other exception (the original one as its
        __cause__)."""
        request = from_pb_push_request(to_pb_push_request(PushRequest(uuid, list(rows), trigger, attempt)))
        try:
            note = self.pusher.push(request)
        except Exception as err:  # noqa: BLE001 - converted as the wire would
            raise _over_the_wire(err) from err
        return note if isinstance(note, str) and note else None


class WatcherRun:
    """A watcher running in a thread of its own."""

    def __init__(self, host: "_FakeWatcherHost", watcher: Watcher):
        self.host = host
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(watcher,), name="watcher-under-test", daemon=True)
        self._thread.start()

    def _run(self, watcher: Watcher) -> None:
        try:
            watcher.run(self.host)
        except BaseException as err:  # noqa: BLE001 - reported by wait and stop
            self.error = err

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float = 5.0) -> None:
        """Waits for run to return by itself, then raises what it raised
        (as the host would see it)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the watcher's run did not return within {timeout:g}s")
        if isinstance(self.error, Exception):
            raise _over_the_wire(self.error) from self.error
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the watcher as the host does and waits for run to return
        (a run that does not return within timeout fails the test)."""
        self.host.stopping.set()
        self.wait(timeout)

    def __enter__(self) -> "WatcherRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _FakeWatcherHost(WatcherHost):
    def __init__(self, fake: "FakeHost", instance: str):
        super().__init__(instance, fake.log, fake.state)
        self._fake = fake

    def _emit(self, trigger: Trigger, key: str, timeout: float | None,
              traceparent: str = "", tracestate: str = "") -> Receipt:
        if self.stopping.is_set():
            raise Unavailable("emit: the watcher is stopping")
        return self._fake.accept(from_pb_trigger(to_pb_trigger(trigger)), key)


class FakeHost:
    """A control-tower and data-gateway stand-in for tests."""

    def __init__(self) -> None:
        #: The plugin's State, kept across runs on this host.
        self.state = MemoryState()
        #: The logger plugins get.
        self.log = logging.getLogger("plugin")
        #: When set, every emission raises it (e.g. Unavailable("store down")).
        self.emit_error: Exception | None = None
        #: Every emission answered, duplicates included, in order.
        self.emitted: list[Emitted] = []
        self._by_key: dict[str, Receipt] = {}
        self._cond = threading.Condition()

    # --- pushers ---

    def start_pusher(self, pusher: Pusher, config: dict[str, str] | None = None,
                     instance: str | None = None) -> PusherUnderTest:
        """Loads the pusher's configuration and calls its start, raising what
        either raises, as the data-gateway would see it (ConfigError
        names the variable)."""
        info = pusher.info()
        name = instance or info.name
        try:
            load_config(info.config, name, _environ(name, config))
            start = getattr(pusher, "start", None)
            if start is not None:
                start(Host(name, self.log, self.state))
        except Exception as err:  # noqa: BLE001 - converted as the wire would
            raise _over_the_wire(err) from err
        return PusherUnderTest(pusher)

    # --- watchers ---

    def run_watcher(self, watcher: Watcher, config: dict[str, str] | None = None,
                    instance: str | None = None) -> WatcherRun:
        """Loads the watcher's configuration (raising ConfigError) and runs
        it in a thread until stop."""
        info = watcher.info()
        name = instance or info.name
        try:
            load_config(info.config, name, _environ(name, config))
        except Exception as err:  # noqa: BLE001 - converted as the wire would
            raise _over_the_wire(err) from err
        return WatcherRun(_FakeWatcherHost(self, name), watcher)

    def accept(self, trigger: Trigger, key: str = "") -> Receipt:
        """The control-tower's side of an emission: validate, store once per
        key, acknowledge."""
        if self.emit_error is not None:
            raise self.emit_error
        trigger.validate()
        with self._cond:
            if key and key in self._by_key:
                receipt = Receipt(self._by_key[key].uuid, duplicate=True)
            else:
                receipt = Receipt(trigger.uuid or secrets.token_hex(8))
                if key:
                    self._by_key[key] = receipt
            trigger.uuid = receipt.uuid
            self.emitted.append(Emitted(trigger, key, receipt))
            self._cond.notify_all()
        return receipt

    @property
    def triggers(self) -> list[Emitted]:
        """The triggers stored, in order: emissions that were not duplicates."""
        with self._cond:
            return [e for e in self.emitted if not e.receipt.duplicate]

    def wait_triggers(self, n: int, timeout: float = 5.0) -> list[Emitted]:
        """Waits until at least n triggers are stored and returns them;
        fails the test after timeout seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len([e for e in self.emitted if not e.receipt.duplicate]) >= n, timeout):
                got = len([e for e in self.emitted if not e.receipt.duplicate])
                raise AssertionError(f"timed out after {timeout:g}s waiting for {n} triggers; {got} stored")
        return self.triggers
