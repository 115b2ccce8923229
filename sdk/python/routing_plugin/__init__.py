"""The routing layer's plugin kit for Python.

A watcher or pusher written with it runs under the control-tower or the
data-gateway exactly like a Go plugin: the hosts launch, supervise,
restart and show it the same way. The kit speaks the plugin protocol
(sdk/internal/pluginpb/plugin.proto, version 1) over go-plugin's handshake,
mutual TLS and broker, with nothing beyond grpcio and protobuf.

    from dataclasses import dataclass
    from routing_plugin import Info, Pusher, Permanent, serve_pusher, setting

    @dataclass
    class Config:
        url: str = setting(required=True, help="where to POST rows")

    class Webhook(Pusher):
        def __init__(self):
            self.cfg = Config()

        def info(self):
            return Info(name="webhook", version="1.0.0", description="POSTs rows", config=self.cfg)

        def push(self, request):
            ...  # return None once delivered; raise Skip, Permanent, or anything (retried)

    if __name__ == "__main__":
        serve_pusher(Webhook())
"""

__version__ = "0.1.0"

from .config import ConfigKey, env_prefix, load_config, setting  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    FieldError,
    NotFound,
    Permanent,
    PluginError,
    Skip,
    TooLarge,
    Unavailable,
    ValidationError,
)
from .host import Host, State, WatcherHost  # noqa: E402
from .plugin import Info, Pusher, Watcher  # noqa: E402
from .serve import serve_pusher, serve_watcher  # noqa: E402
from .types import Metadata, Plate, PushRequest, Receipt, Row, StoredTrigger, Trigger, valid_uuid  # noqa: E402

__all__ = [
    "ConfigError", "ConfigKey", "FieldError", "Host", "Info", "Metadata", "NotFound", "Permanent", "Plate",
    "PluginError", "PushRequest", "Pusher", "Receipt", "Row", "Skip", "State", "StoredTrigger", "TooLarge",
    "Trigger", "Unavailable", "ValidationError", "Watcher", "WatcherHost", "env_prefix", "load_config",
    "serve_pusher", "serve_watcher", "setting", "valid_uuid",
]
