"""Logging to the host: hclog-style JSON lines on stderr.

go-plugin reads a plugin's stderr line by line and re-logs each JSON line
({"@level": "info", "@message": "...", "@timestamp": "...", key: value...})
under the plugin's name at its level; the host keeps the last lines for
GET /plugins/{name}. Extra fields of a record (log.info("emitted",
extra={"file": name})) become key-value pairs. stdout belongs to the
handshake: after it, the kit sends what is printed there to the log.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import sys
import threading
import traceback
from typing import IO, Any

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# Levels as hclog names them (ROUTING_PLUGIN_LOG_LEVEL uses these).
_LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

PLUGIN_LOGGER = "plugin"


def level_from_name(name: str | None, default: int = logging.INFO) -> int:
    """The logging level of an hclog level name (trace, debug, info, warn,
    error); default for anything else."""
    return _LEVELS.get((name or "").strip().lower(), default)


def _hclog_level(levelno: int) -> str:
    if levelno < logging.DEBUG:
        return "trace"
    if levelno < logging.INFO:
        return "debug"
    if levelno < logging.WARNING:
        return "info"
    if levelno < logging.ERROR:
        return "warn"
    return "error"


class HclogHandler(logging.Handler):
    """Writes records as hclog JSON lines, one write per line."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__()
        self.stream = stream if stream is not None else sys.__stderr__

    def format_line(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created).astimezone()
        entry: dict[str, Any] = {
            "@level": _hclog_level(record.levelno),
            "@message": record.getMessage(),
            "@timestamp": ts.isoformat(timespec="microseconds"),
        }
        if record.name not in ("root", PLUGIN_LOGGER):
            entry["@module"] = record.name
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = "".join(traceback.format_exception_only(*record.exc_info[:2])).strip()
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format_line(record) + "\n"
            with _write_lock:
                self.stream.write(line)
                self.stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


_write_lock = threading.Lock()


def configure(level: int) -> logging.Logger:
    """Routes every logger to the host through stderr at level and returns
    the plugin's logger."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(HclogHandler())
    root.setLevel(level)
    return logging.getLogger(PLUGIN_LOGGER)


class StdoutToLog(io.TextIOBase):
    """Stands in for sys.stdout after the handshake: each printed line is
    logged at info under the module "stdout"."""

    def __init__(self) -> None:
        self._log = logging.getLogger("stdout")
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._buf += s
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._log.info(line)
        return len(s)

    def flush(self) -> None:
        with self._lock:
            line, self._buf = self._buf, ""
        if line:
            self._log.info(line)
