"""Conversions between the kit's values and the generated protobuf types."""

from __future__ import annotations

import datetime
import json
from typing import Any

from . import errors as e
from ._pb import plugin_pb2 as pb
from .types import Metadata, Plate, PushRequest, Row, StoredTrigger, Trigger, _compact

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

# Wire codes of the error classes, most specific first.
_CODES: list[tuple[type[e.PluginError], int]] = [
    (e.ValidationError, pb.ERROR_CODE_INVALID),
    (e.Skip, pb.ERROR_CODE_SKIPPED),
    (e.Permanent, pb.ERROR_CODE_PERMANENT),
    (e.NotFound, pb.ERROR_CODE_NOT_FOUND),
    (e.ConfigError, pb.ERROR_CODE_CONFIG),
    (e.TooLarge, pb.ERROR_CODE_TOO_LARGE),
    (e.Unavailable, pb.ERROR_CODE_UNAVAILABLE),
]


def error_message(err: BaseException) -> str:
    """The message of err as it crosses the wire: the kit's errors as they
    are, others with their type ("KeyError: 'x'")."""
    if isinstance(err, e.PluginError):
        return str(err) or type(err).__name__
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def to_pb_error(err: BaseException | None) -> pb.Error | None:
    if err is None:
        return None
    out = pb.Error(message=error_message(err))
    for cls, code in _CODES:
        if isinstance(err, cls):
            out.code = code
            break
    if isinstance(err, e.ValidationError):
        out.fields.extend(pb.FieldError(field=f.field, reason=f.reason) for f in err.fields)
    return out


def from_pb_error(p: pb.Error | None) -> e.PluginError | None:
    """The exception a wire error stands for; None for no error."""
    if p is None:
        return None
    if p.code == pb.ERROR_CODE_INVALID:
        fields = [e.FieldError(f.field, f.reason) for f in p.fields] or [e.FieldError("", p.message)]
        return e.ValidationError(fields)
    for cls, code in _CODES:
        if code == p.code:
            return cls(p.message)
    return e.PluginError(p.message)


def _json_or_none(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def to_pb_trigger(t: Trigger) -> pb.Trigger:
    out = pb.Trigger(uuid=t.uuid, api_version=t.api_version, protocol=t.protocol, spec_json=_compact(t.spec))
    if t.plate is not None:
        out.plate.CopyFrom(pb.Plate(rows=t.plate.rows, columns=t.plate.columns))
    if t.metadata is not None:
        out.has_metadata = True
        out.metadata_source = t.metadata.source
        if t.metadata.spec is not None:
            out.metadata_spec_json = _compact(t.metadata.spec)
    return out


def _trigger_fields(p: pb.Trigger) -> dict[str, Any]:
    return dict(
        uuid=p.uuid,
        api_version=p.api_version,
        protocol=p.protocol,
        spec=_json_or_none(p.spec_json),
        plate=Plate(p.plate.rows, p.plate.columns) if p.HasField("plate") else None,
        metadata=Metadata(p.metadata_source, _json_or_none(p.metadata_spec_json)) if p.has_metadata else None,
    )


def from_pb_trigger(p: pb.Trigger) -> Trigger:
    return Trigger(**_trigger_fields(p))


def _micros(t: datetime.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return (t - _EPOCH) // datetime.timedelta(microseconds=1)


def to_pb_stored_trigger(t: StoredTrigger) -> pb.StoredTrigger:
    return pb.StoredTrigger(
        trigger=to_pb_trigger(t),
        created_at_unix_micro=_micros(t.created_at),
        source=t.source,
        status=t.status,
        published_at_unix_micro=_micros(t.published_at) if t.published_at else 0,
    )


def from_pb_stored_trigger(p: pb.StoredTrigger) -> StoredTrigger:
    published = None
    if p.published_at_unix_micro:
        published = _EPOCH + datetime.timedelta(microseconds=p.published_at_unix_micro)
    return StoredTrigger(
        **_trigger_fields(p.trigger),
        created_at=_EPOCH + datetime.timedelta(microseconds=p.created_at_unix_micro),
        source=p.source,
        status=p.status,
        published_at=published,
    )


def to_pb_push_request(r: PushRequest) -> pb.PushRequest:
    out = pb.PushRequest(uuid=r.uuid, attempt=max(r.attempt, 0))
    for row in r.rows:
        pr = out.rows.add()
        if row.index is not None:
            pr.has_index, pr.index = True, row.index
        pr.data.extend(pb.Field(key=k, value_json=v) for k, v in row.fields)
    if r.trigger is not None:
        out.trigger.CopyFrom(to_pb_stored_trigger(r.trigger))
    return out


def from_pb_push_request(p: pb.PushRequest) -> PushRequest:
    rows = [Row(tuple((f.key, f.value_json) for f in r.data), r.index if r.has_index else None) for r in p.rows]
    trigger = from_pb_stored_trigger(p.trigger) if p.HasField("trigger") else None
    return PushRequest(uuid=p.uuid, rows=rows, trigger=trigger, attempt=p.attempt)
