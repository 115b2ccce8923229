"""A Python pusher whose start always fails, with secrets in its configuration."""

from dataclasses import dataclass

from routing_plugin import Host, Info, PushRequest, Pusher, serve_pusher, setting


@dataclass
class Config:
    label: str = setting(required=True, help="shown as is")
    token: str = setting(secret=True, help="masked: declared secret")
    api_key: str = setting(help="masked: its name ends in KEY")


class BrokenPusher(Pusher):
    def __init__(self) -> None:
        self.cfg = Config()

    def info(self) -> Info:
        return Info(name="pybroken", version="0.0.1", description="fails at start", config=self.cfg)

    def start(self, host: Host) -> None:
        raise RuntimeError("calibration table missing")

    def push(self, request: PushRequest) -> None:
        raise AssertionError("never started")


def main() -> None:
    serve_pusher(BrokenPusher())
