"""What a plugin implements: Info, and the Pusher or Watcher interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host import Host, WatcherHost
    from .types import PushRequest


@dataclass
class Info:
    """How a plugin describes itself.

    name is the implementation's name ("pyjsonl"); the instance name comes
    from the file name and may differ (one file installed as pusher-a and
    pusher-b). config is the plugin's configuration dataclass instance: the
    kit fills it from PLUGIN_<NAME>_* variables before start or run (see
    routing_plugin.config); None when the plugin takes no configuration.
    """

    name: str
    version: str
    description: str = ""
    config: Any = None


class Pusher:
    """A pusher forwards data rows to one destination. Subclass it, or
    provide the same methods."""

    def info(self) -> Info:
        """Describes the plugin; called before the configuration is loaded."""
        raise NotImplementedError

    def start(self, host: "Host") -> None:
        """Called once, with the configuration loaded, before the first
        push. An exception fails the plugin's start: the host shows it as
        the plugin's last error and restarts the plugin with backoff."""

    def push(self, request: "PushRequest") -> str | None:
        """Delivers request.rows. Return None once they are durably
        delivered, or a note (a str) operators see with the delivery; raise
        Skip(reason) when this destination does not handle the trigger,
        Permanent(message) when retrying cannot help. Any other exception
        is retried later with the same rows. Called concurrently for
        different uuids, never for the same uuid."""
        raise NotImplementedError


class Watcher:
    """A watcher watches an upstream source and emits protocol triggers.
    Subclass it, or provide the same methods."""

    def info(self) -> Info:
        """Describes the plugin; called before the configuration is loaded."""
        raise NotImplementedError

    def run(self, host: "WatcherHost") -> None:
        """Watches until host.stopping is set (host.wait(seconds) sleeps
        and says whether it is), emitting triggers with host.emit. Return
        once stopping; an exception is a failure the host shows and
        recovers from by restarting the plugin."""
        raise NotImplementedError
