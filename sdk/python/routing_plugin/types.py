"""The plugin contract's values: triggers, rows, pushes and receipts."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import FieldError, ValidationError

_API_VERSION = re.compile(r"^[a-z0-9-]+/v[1-9][0-9]*[a-z0-9]*(/[a-z0-9-]+)?$", re.IGNORECASE)
_UUID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TRIGGER_FIELDS = ("uuid", "apiVersion", "protocol", "plate", "spec", "metadata")

MAX_PLATE_SIDE = 1000
MAX_PROTOCOL_LENGTH = 128


def valid_uuid(s: str) -> bool:
    """Whether s may be a trigger's uuid: 1-64 of [A-Za-z0-9_-]."""
    return bool(_UUID.fullmatch(s))


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass
class Plate:
    """The shape of a well plate: rows and columns, each 1-1000."""

    rows: int
    columns: int

    @property
    def wells(self) -> int:
        return self.rows * self.columns


@dataclass
class Metadata:
    """Where a trigger came from: a source name and source-specific details
    (a JSON object or array as Python dicts and lists, or None)."""

    source: str
    spec: Any = None


@dataclass
class Trigger:
    """A protocol trigger, as the control-tower's JSON has it.

    spec is the decoded JSON (a dict, or a list of one dict per well when
    plate is set). Watchers leave uuid empty; the control-tower assigns one.
    """

    api_version: str
    protocol: str
    spec: Any
    plate: Plate | None = None
    metadata: Metadata | None = None
    uuid: str = ""

    @classmethod
    def from_dict(cls, doc: Any) -> "Trigger":
        """Builds a trigger from its JSON document as a dict
        ({"apiVersion": ..., "protocol": ..., "spec": ..., "plate": ...,
        "metadata": ...}), refusing unknown fields and wrong types with a
        ValidationError. It is not validated further: see validate."""
        errors: list[FieldError] = []
        if not isinstance(doc, dict):
            raise ValidationError([FieldError("", "a trigger must be a JSON object")])
        for key in doc:
            if key not in _TRIGGER_FIELDS:
                errors.append(FieldError(key, "unknown field"))

        def text(key: str) -> str:
            v = doc.get(key, "")
            if not isinstance(v, str):
                errors.append(FieldError(key, "must be a string"))
                return ""
            return v

        plate = None
        if doc.get("plate") is not None:
            p = doc["plate"]
            if not isinstance(p, dict) or set(p) - {"rows", "columns"}:
                errors.append(FieldError("plate", 'must be {"rows": r, "columns": c}'))
            else:
                rows, cols = p.get("rows", 0), p.get("columns", 0)
                for name, v in (("plate.rows", rows), ("plate.columns", cols)):
                    if not isinstance(v, int) or isinstance(v, bool):
                        errors.append(FieldError(name, "must be an integer"))
                plate = Plate(rows if isinstance(rows, int) else 0, cols if isinstance(cols, int) else 0)
        metadata = None
        if doc.get("metadata") is not None:
            m = doc["metadata"]
            if not isinstance(m, dict) or set(m) - {"source", "spec"}:
                errors.append(FieldError("metadata", 'must be {"source": "...", "spec": ...}'))
            elif not isinstance(m.get("source", ""), str):
                errors.append(FieldError("metadata.source", "must be a string"))
            else:
                metadata = Metadata(m.get("source", ""), m.get("spec"))
        t = cls(api_version=text("apiVersion"), protocol=text("protocol"), spec=doc.get("spec"),
                plate=plate, metadata=metadata, uuid=text("uuid"))
        if errors:
            raise ValidationError(errors)
        return t

    @classmethod
    def from_json(cls, data: str | bytes) -> "Trigger":
        """Decodes one trigger document (a leading UTF-8 byte order mark is
        ignored; repeated member names are refused) and validates it. Every
        error is a ValidationError naming the field."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValidationError([FieldError("", f"invalid UTF-8 at byte offset {e.start}")]) from None
        data = data.removeprefix("\ufeff")

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for k, v in items:
                if k in seen:
                    raise ValidationError([FieldError(k, f"member {k!r} appears more than once in the same object: send it once")])
                seen[k] = v
            return seen

        try:
            doc = json.loads(data, object_pairs_hook=pairs)
        except json.JSONDecodeError as e:
            raise ValidationError([FieldError("", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")]) from None
        t = cls.from_dict(doc)
        t.validate()
        return t

    def to_dict(self) -> dict[str, Any]:
        """The trigger as the control-tower's JSON document."""
        out: dict[str, Any] = {}
        if self.uuid:
            out["uuid"] = self.uuid
        out["apiVersion"] = self.api_version
        out["protocol"] = self.protocol
        if self.plate is not None:
            out["plate"] = {"rows": self.plate.rows, "columns": self.plate.columns}
        out["spec"] = self.spec
        if self.metadata is not None:
            out["metadata"] = {"source": self.metadata.source}
            if self.metadata.spec is not None:
                out["metadata"]["spec"] = self.metadata.spec
        return out

    def validate(self) -> None:
        """Checks the trigger against the contract (the control-tower's
        rules) and raises a ValidationError naming every offending field."""
        errs: list[FieldError] = []
        add = lambda f, r: errs.append(FieldError(f, r))  # noqa: E731
        if self.uuid and not valid_uuid(self.uuid):
            add("uuid", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        if not self.api_version:
            add("apiVersion", "is required, e.g. OT-2/v1alpha1")
        elif not _API_VERSION.fullmatch(self.api_version):
            add("apiVersion", f"{json.dumps(self.api_version)} must look like <api>/v<N>[suffix][/<device>], e.g. OT-2/v1alpha1 or ChiBio/v1alpha1/ChiBio1")
        p = self.protocol
        if not p.strip():
            add("protocol", "is required, e.g. SerialDilution")
        elif p.strip() != p:
            add("protocol", "must not start or end with white space")
        elif len(p.encode()) > MAX_PROTOCOL_LENGTH:
            add("protocol", f"must be at most {MAX_PROTOCOL_LENGTH} characters")
        if self.plate is not None:
            for name, n in (("plate.rows", self.plate.rows), ("plate.columns", self.plate.columns)):
                if not 1 <= n <= MAX_PLATE_SIDE:
                    add(name, f"must be between 1 and {MAX_PLATE_SIDE}")
        spec = self.spec
        if spec is None:
            add("spec", "is required: an object, or an array of objects (one per well)")
        elif isinstance(spec, dict):
            if self.plate is not None:
                add("spec", f"must be an array of {self.plate.wells} well objects when plate is set")
            elif not spec:
                add("spec", "must not be empty")
        elif isinstance(spec, list):
            if not spec:
                add("spec", "must not be empty")
            else:
                for i, w in enumerate(spec):
                    if not isinstance(w, dict):
                        add(f"spec[{i}]", "must be an object")
                pl = self.plate
                if pl is not None and pl.rows >= 1 and pl.columns >= 1 and len(spec) != pl.wells:
                    add("spec", f"has {len(spec)} wells but plate {pl.rows}x{pl.columns} has {pl.wells}")
        else:
            add("spec", "must be an object or an array of objects")
        if spec is not None:
            try:
                _compact(spec)
            except (TypeError, ValueError) as e:
                add("spec", f"cannot be written as JSON: {e}")
        if self.metadata is not None:
            if not self.metadata.source.strip():
                add("metadata.source", "is required when metadata is set")
            if self.metadata.spec is not None and not isinstance(self.metadata.spec, (dict, list)):
                add("metadata.spec", "must be an object or an array")
        if errs:
            raise ValidationError(errs)


@dataclass(kw_only=True)
class StoredTrigger(Trigger):
    """A trigger as the control-tower stored it, with its read-only fields
    (what a pusher receives with each push)."""

    created_at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    source: str = ""  # "http" or "watcher:<name>"
    status: str = ""  # "pending", "published", "unroutable"
    published_at: datetime.datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """The control-tower's acknowledgement of an emitted trigger: its uuid,
    and whether the key had been stored before (uuid is then the original
    trigger's)."""

    uuid: str
    duplicate: bool = False


@dataclass(frozen=True)
class Row:
    """One data row: the well index for plate-based protocols (None
    otherwise) and its fields in the order the client sent them, each value
    the JSON text exactly as sent (b"1.50" stays b"1.50")."""

    fields: tuple[tuple[str, bytes], ...]
    index: int | None = None

    @classmethod
    def of(cls, data: dict[str, Any], index: int | None = None) -> "Row":
        """A row from Python values, in the dict's order."""
        return cls(tuple((k, _compact(v)) for k, v in data.items()), index)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Row":
        """A row from its JSON document ({"index": 0, "data": {...}}),
        keeping each value's text as written."""
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        members = dict(_raw_members(text))
        if set(members) - {"index", "data"} or "data" not in members:
            raise ValueError('a row is {"index": n, "data": {...}}')
        index = json.loads(members["index"]) if "index" in members else None
        fields = tuple((k, v.encode()) for k, v in _raw_members(members["data"]))
        return cls(fields, index)

    @property
    def data(self) -> dict[str, Any]:
        """The fields decoded, in order (1.50 becomes the float 1.5)."""
        return {k: json.loads(v) for k, v in self.fields}

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value of key, or default."""
        for k, v in self.fields:
            if k == key:
                return json.loads(v)
        return default

    def data_json(self) -> bytes:
        """The fields as one compact JSON object, in order, each value as
        sent: the same bytes the Go SDK's Data.MarshalJSON writes."""
        parts = []
        for k, v in self.fields:
            if v[:1] in (b"{", b"["):
                v = _compact(json.loads(v))
            parts.append(_json_key(k) + b":" + (v or b"null"))
        return b"{" + b",".join(parts) + b"}"


def _json_key(key: str) -> bytes:
    if all(0x20 <= ord(c) < 0x7F and c not in '"\\<>&' for c in key):
        return b'"' + key.encode() + b'"'
    # As Go's encoding/json quotes it.
    quoted = json.dumps(key, ensure_ascii=False)
    for c, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        quoted = quoted.replace(c, esc)
    return quoted.encode()


_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _raw_members(text: str) -> Iterator[tuple[str, str]]:
    """The members of one JSON object, each value as its raw text."""
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        i += 1
    else:
        while True:
            key, i = _DECODER.raw_decode(text, i)
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            i = _skip(text, i)
            if text[i : i + 1] != ":":
                raise ValueError(f"':' expected at offset {i}")
            i = _skip(text, i + 1)
            _, end = _DECODER.raw_decode(text, i)
            yield key, text[i:end]
            i = _skip(text, end)
            c, i = text[i : i + 1], _skip(text, i + 1)
            if c == "}":
                break
            if c != ",":
                raise ValueError(f"',' or '}}' expected at offset {i - 1}")
    if _skip(text, i) != len(text):
        raise ValueError("trailing data after the object")


@dataclass
class PushRequest:
    """One push of rows to a pusher: the trigger's uuid, the rows in the
    order they were accepted, the stored trigger (None when the gateway
    does not know it) and the attempt, from 1. traceparent and tracestate
    are the W3C trace context of the gateway's push span ("" when it has
    none): send them as headers of a call the push makes, and the
    destination's work joins the trace of the request that brought the
    rows."""

    uuid: str
    rows: list[Row]
    trigger: StoredTrigger | None = None
    attempt: int = 1
    traceparent: str = ""
    tracestate: str = ""
