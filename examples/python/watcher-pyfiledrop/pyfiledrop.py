"""watcher-pyfiledrop: emits a protocol trigger for each JSON file dropped into a
directory, once per content: State remembers what was emitted, across restarts."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

from routing_plugin import (ConfigError, Info, Metadata, Trigger, Unavailable, ValidationError, Watcher,
                            WatcherHost, env_prefix, serve_watcher, setting)


@dataclass
class Config:
    dir: str = setting(required=True, help="directory watched for *.json trigger files")
    scan_interval: timedelta = setting(default="1s", help="how often the directory is scanned")


class FileDropWatcher(Watcher):
    def __init__(self) -> None:
        self.cfg = Config()

    def info(self) -> Info:
        return Info(name="pyfiledrop", version="1.0.0", config=self.cfg,
                    description="emits a protocol trigger for each JSON file dropped into a directory")

    def run(self, host: WatcherHost) -> None:
        if not os.path.isdir(self.cfg.dir):
            raise ConfigError(f"{env_prefix(host.instance_name)}DIR={self.cfg.dir!r} is not a directory")
        host.log.info("watching for trigger files", extra={"dir": self.cfg.dir})
        while not host.stopping.is_set():
            for name in sorted(os.listdir(self.cfg.dir)):
                if name.endswith(".json") and not name.startswith(".") and not host.stopping.is_set():
                    try:
                        self.process(host, name)
                    except (OSError, Unavailable) as err:
                        host.log.warning("could not emit trigger; will retry", extra={"file": name, "error": str(err)})
            host.wait(self.cfg.scan_interval.total_seconds())

    def process(self, host: WatcherHost, name: str) -> None:
        with open(os.path.join(self.cfg.dir, name), "rb") as f:
            data = f.read()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest.encode() in (host.state.get("emitted/" + name), host.state.get("invalid/" + name)):
            return  # handled in this content already
        try:
            trigger = Trigger.from_json(data)
            trigger.metadata = trigger.metadata or Metadata("pyfiledrop", {"file": name})
            receipt = host.emit(trigger, key=f"pyfiledrop:{name}:{digest}")
        except ValidationError as err:
            host.log.warning("invalid trigger file skipped; fix it and it is read again", extra={"file": name, "error": str(err)})
            host.state.put("invalid/" + name, digest)
            return
        host.state.put("emitted/" + name, digest)  # only after the control-tower stored it
        host.state.delete("invalid/" + name)
        host.log.info("trigger emitted", extra={"file": name, "uuid": receipt.uuid, "duplicate": receipt.duplicate})


def main() -> None:
    serve_watcher(FileDropWatcher())


if __name__ == "__main__":
    main()
