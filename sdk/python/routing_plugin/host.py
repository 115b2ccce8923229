"""What the host offers a running plugin: its instance name, a logger,
State, and for watchers emit."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from .types import Receipt, Trigger


class State(Protocol):
    """A small durable key-value store kept by the host for this plugin
    instance (in the service's database), so a restarted plugin resumes
    where it stopped. Keys are strings, values bytes (a str is stored as
    UTF-8). Calls raise Unavailable when the host cannot serve them now."""

    def get(self, key: str) -> bytes | None:
        """The value of key, None when it is not set."""
        ...

    def put(self, key: str, value: bytes | str) -> None:
        """Stores value under key, replacing any previous value."""
        ...

    def delete(self, key: str) -> None:
        """Removes key; deleting an absent key is not an error."""
        ...

    def list(self, prefix: str = "") -> list[tuple[str, bytes]]:
        """The entries whose key starts with prefix, sorted by key."""
        ...


def value_bytes(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"State values are bytes or str, not {type(value).__name__}")


class Host:
    """The service running the plugin, as a pusher sees it."""

    def __init__(self, instance_name: str, log: logging.Logger, state: State):
        #: The name from the plugin's file name ("archive" for pusher-archive).
        self.instance_name = instance_name
        #: The plugin's logger; its lines are shown under the instance name.
        self.log = log
        #: The plugin's durable key-value store.
        self.state = state


class WatcherHost(Host):
    """The service running the plugin, as a watcher sees it."""

    def __init__(self, instance_name: str, log: logging.Logger, state: State):
        super().__init__(instance_name, log, state)
        #: Set when the host stops the watcher: run should return.
        self.stopping = threading.Event()

    def wait(self, seconds: float) -> bool:
        """Sleeps up to seconds; True as soon as the watcher is stopping."""
        return self.stopping.wait(seconds)

    def emit(self, trigger: Trigger | dict[str, Any], key: str | None = None,
             timeout: float | None = None, traceparent: str = "", tracestate: str = "") -> Receipt:
        """Sends a trigger (a Trigger, or its JSON document as a dict) and
        returns once the control-tower has durably stored it (or found the
        key stored before: Receipt.duplicate). key is the idempotency key,
        e.g. "myplugin:<source id>": the host stores one trigger per key.

        Raises ValidationError naming the fields when the trigger is
        invalid (checked here first, then by the control-tower), and
        Unavailable when the host could not store it now (retry later) or
        the watcher is stopping, or timeout seconds passed. Update your own
        bookkeeping only after emit returns: a crash then neither loses nor
        doubles a trigger. traceparent and tracestate (W3C Trace Context,
        e.g. from the upstream event's headers) make the control-tower's
        trace of the trigger continue that trace."""
        t = trigger if isinstance(trigger, Trigger) else Trigger.from_dict(trigger)
        t.validate()
        return self._emit(t, key or "", timeout, traceparent, tracestate)

    def _emit(self, trigger: Trigger, key: str, timeout: float | None,
              traceparent: str = "", tracestate: str = "") -> Receipt:
        raise NotImplementedError
