"""A plugin's configuration: a dataclass filled from PLUGIN_<NAME>_* variables.

    @dataclass
    class Config:
        dir: str = setting(required=True, help="directory of the files")
        token: str = setting(secret=True, help="bearer token")
        scan_interval: timedelta = setting(default="5s", help="full rescan period")

Each field reads PLUGIN_<NAME>_<FIELD> (the field name upper-cased, or
env="..."), <NAME> being the instance name from the plugin's file name
upper-cased with "-" as "_" (pusher-my-files reads PLUGIN_MY_FILES_*).
Types: str, int, float, bool (true/false, 1/0, yes/no, on/off),
datetime.timedelta (Go durations: "1m30s", "200ms"; a plain number is
seconds), pathlib.Path, list[str] (comma-separated) and Optional versions of
them.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import re
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["setting", "env_prefix", "config_keys", "load_config", "ConfigKey", "parse_duration", "format_duration"]

_META = "routing_plugin"
_MISSING = dataclasses.MISSING


def setting(*, default: Any = None, required: bool = False, secret: bool = False, help: str = "",
            env: str | None = None) -> Any:
    """Declares a configuration field. default is the value when the
    variable is unset, typed or as an operator would write it ("5s");
    required fields must be set and non-empty; secret values are masked
    wherever the host shows them (names ending in KEY, TOKEN, PASSWORD or
    SECRET are secret anyway); help is shown to operators; env overrides
    the variable's name after the prefix."""
    meta = {"required": required, "secret": secret, "help": help, "env": env, "default": default}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={_META: meta})
    return dataclasses.field(default=default, metadata={_META: meta})


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One configuration variable, as the plugin reports it to the host."""

    name: str  # without the PLUGIN_<NAME>_ prefix
    required: bool = False
    secret: bool = False
    default: str = ""
    help: str = ""


def env_prefix(instance: str) -> str:
    """The prefix of an instance's variables: "my-files" -> "PLUGIN_MY_FILES_"."""
    return "PLUGIN_" + instance.replace("-", "_").upper() + "_"


def _looks_secret(name: str) -> bool:
    return name.upper().endswith(("KEY", "TOKEN", "PASSWORD", "SECRET"))


def _fields(cfg: Any) -> list[tuple[dataclasses.Field, dict, str, Any]]:
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"Info.config must be a dataclass instance, not {type(cfg).__name__}")
    hints = typing.get_type_hints(cfg if isinstance(cfg, type) else type(cfg))
    out = []
    for f in dataclasses.fields(cfg):
        meta = dict(f.metadata.get(_META) or {})
        if not meta:
            default = f.default if f.default is not _MISSING else None
            meta = {"required": False, "secret": False, "help": "", "env": None, "default": default}
        out.append((f, meta, meta.get("env") or f.name.upper(), hints.get(f.name, str)))
    return out


def config_keys(cfg: Any) -> list[ConfigKey]:
    """The keys a configuration dataclass (an instance or the class) reads."""
    if cfg is None:
        return []
    return [
        ConfigKey(name=name, required=meta["required"], secret=meta["secret"] or _looks_secret(name),
                  default=_format(meta["default"]), help=meta["help"])
        for _, meta, name, _ in _fields(cfg)
    ]


def load_config(cfg: Any, instance: str, environ: Mapping[str, str]) -> None:
    """Fills the dataclass instance cfg in place from environ's variables
    of the instance's prefix. Raises ConfigError naming the variable."""
    if cfg is None:
        return
    if isinstance(cfg, type):
        raise TypeError("Info.config must be a dataclass instance (Config()), not the class")
    prefix = env_prefix(instance)
    problems = []
    values = {}
    for f, meta, name, typ in _fields(cfg):
        var = prefix + name
        raw = environ.get(var)
        if raw is None or raw == "":
            if meta["required"]:
                problems.append(f"{var} is required" + (f" ({meta['help']})" if meta["help"] else ""))
                continue
            default = meta["default"]
            if isinstance(default, str) and _base(typ) is not str:
                raw = default
            else:
                values[f.name] = _zero(typ) if default is None else default
                continue
        try:
            values[f.name] = _parse(raw, typ)
        except ValueError as e:
            problems.append(f"{var}={raw!r}: {e}")
    if problems:
        raise ConfigError("; ".join(problems))
    for k, v in values.items():
        setattr(cfg, k, v)


def _base(typ: Any) -> Any:
    """The type inside Optional[...]."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return typ


def _zero(typ: Any) -> Any:
    """The value of an unset field without a default: None when Optional,
    else the type's zero value, as Go has it."""
    if _base(typ) is not typ:
        return None
    if typing.get_origin(typ) is list:
        return []
    zeros = {str: "", int: 0, float: 0.0, bool: False, datetime.timedelta: datetime.timedelta(0)}
    return zeros.get(typ)


def _parse(raw: str, typ: Any) -> Any:
    typ = _base(typ)
    if typ in (str, Any):
        return raw
    if typ is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on", "t"):
            return True
        if low in ("0", "false", "no", "off", "f"):
            return False
        raise ValueError("must be true or false")
    if typ is int:
        try:
            return int(raw.strip(), 0)
        except ValueError:
            raise ValueError("must be an integer") from None
    if typ is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    if typ is datetime.timedelta:
        return parse_duration(raw)
    if typ is pathlib.Path:
        return pathlib.Path(raw)
    if typing.get_origin(typ) is list:
        return [s.strip() for s in raw.split(",") if s.strip()]
    raise ValueError(f"unsupported configuration type {typ!r}")


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(raw: str) -> datetime.timedelta:
    """Parses a Go duration ("1h30m", "200ms", "5s"); a plain number is
    seconds. Raises ValueError."""
    s = raw.strip()
    try:
        return datetime.timedelta(seconds=float(s))
    except ValueError:
        pass
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise ValueError('must be a duration such as "5s", "200ms" or "1m30s"')
    return datetime.timedelta(seconds=sign * total)


def format_duration(d: datetime.timedelta) -> str:
    """A duration as Go writes it: 5s, 1m30s, 200ms."""
    us = round(d.total_seconds() * 1e6)
    if us == 0:
        return "0s"
    sign, us = ("-" if us < 0 else ""), abs(us)
    if us < 1_000_000:
        return sign + (f"{us // 1000}ms" if us % 1000 == 0 else f"{us}µs")
    h, rest = divmod(us, 3_600_000_000)
    m, rest = divmod(rest, 60_000_000)
    secs = f"{rest / 1e6:.6f}".rstrip("0").rstrip(".")
    return sign + (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{secs}s"


def _format(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, datetime.timedelta):
        return format_duration(default)
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)
