"""pusher-pyjsonl: appends each data row as one JSON line to <dir>/<uuid>.jsonl,
synced to disk before the push is reported delivered. The same lines as the
Go pusher-jsonl: {"uuid":"<uuid>","index":<n>,"data":{...}}, values as sent."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from routing_plugin import Host, Info, Permanent, PushRequest, Pusher, Row, serve_pusher, setting, valid_uuid


@dataclass
class Config:
    dir: str = setting(required=True, help="directory of the <uuid>.jsonl files")


class JsonlPusher(Pusher):
    def __init__(self) -> None:
        self.cfg = Config()

    def info(self) -> Info:
        return Info(name="pyjsonl", version="1.0.0", config=self.cfg,
                    description="appends rows to one JSON-lines file per trigger")

    def start(self, host: Host) -> None:
        os.makedirs(self.cfg.dir, mode=0o750, exist_ok=True)

    def push(self, request: PushRequest) -> None:
        if not valid_uuid(request.uuid):
            raise Permanent(f"uuid {request.uuid!r} cannot name a file")
        data = lines(request.uuid, request.rows)
        fd = os.open(os.path.join(self.cfg.dir, request.uuid + ".jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)  # one append: concurrent writers never interleave lines
            os.fsync(fd)
        finally:
            os.close(fd)


def lines(uuid: str, rows: list[Row]) -> bytes:
    """The JSON lines of rows, as push appends them."""
    out = []
    for row in rows:
        index = b"" if row.index is None else b',"index":%d' % row.index
        out.append(b'{"uuid":' + json.dumps(uuid).encode() + index + b',"data":' + row.data_json() + b"}\n")
    return b"".join(out)


def main() -> None:
    serve_pusher(JsonlPusher())


if __name__ == "__main__":
    main()
