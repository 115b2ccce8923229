"""Posting data rows to the data-gateway (POST /data/batch), with urllib."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

log = logging.getLogger("routing_client.rows")

# The gateway's rule for data keys; a row breaking it would be refused
# and stop the poster, so add refuses it at once.
_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


@dataclass
class Row:
    """One data row: ``data`` a dict of camelCase keys to strings, numbers,
    booleans or None (sent in its own key order); ``index`` the well, None
    for a protocol without wells."""

    data: dict
    index: Optional[int] = None

    def to_json(self) -> dict:
        out: dict = {}
        if self.index is not None:
            out["index"] = self.index
        out["data"] = self.data
        return out


@dataclass
class Accepted:
    """The gateway's answer to an accepted batch: the delivery ``id``
    (GET /data/{id} shows its progress), ``rows`` accepted, the
    ``pushers``; ``replayed`` when an earlier attempt had stored it and the
    gateway repeated that answer."""

    id: int
    uuid: str
    rows: int
    pushers: list
    replayed: bool = False


class Closed(Exception):
    """Raised by add after close."""


@dataclass
class BatchError(Exception):
    """A batch the gateway refused (a 4xx other than 408, 409, 425 and 429)
    or whose retries were given up (give_up_after): none of its rows is
    known to be stored. ``key`` is its Idempotency-Key: posting the same
    rows under it again cannot store them twice. ``status`` is the last
    answer's HTTP status (0: no answer), ``detail`` the gateway's problem
    detail naming the field at fault."""

    uuid: str
    key: str
    rows: list
    status: int
    detail: str
    attempts: int
    reason: str = ""

    def __str__(self) -> str:
        msg = (f"batch of {len(self.rows)} rows for {self.uuid} (Idempotency-Key {self.key}) "
               f"not delivered after {self.attempts} attempts")
        if self.status:
            msg += f": {self.status}"
        return "; ".join([msg] + [s for s in (self.detail, self.reason) if s])


def _retryable(status: int) -> bool:
    return status == 0 or status >= 500 or status in (408, 409, 425, 429)


def parse_retry_after(value: Optional[str]) -> float:
    """Retry-After in seconds (a number, or an HTTP date); 0 when absent or
    unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(when.timestamp() - time.time(), 0.0)


def _new_key() -> str:
    return secrets.token_hex(16)


@dataclass
class _Batch:
    uuid: str
    key: str
    rows: list = field(default_factory=list)
    encoded: list = field(default_factory=list)
    size: int = 0
    due: float = 0.0
    body: bytes = b""
    traceparent: str = ""
    tracestate: str = ""

    def build(self) -> None:
        self.body = (b'{"uuid":' + json.dumps(self.uuid).encode() + b',"rows":[' + b",".join(self.encoded) + b"]}")
        self.encoded = []


class Rows:
    """Posts rows to a data-gateway. Rows added for a uuid are sent in the
    order added, in batches of up to ``batch_rows`` rows and
    ``batch_bytes`` bytes, each sent at the latest ``batch_delay`` seconds
    after its first row, by one sender thread, one batch after the other.
    A batch is retried with exponential backoff (``retry_min`` doubling to
    ``retry_max`` seconds, with jitter; a Retry-After of the gateway's is
    waited for instead) on network errors, 408, 409, 425, 429 and 5xx,
    under the same Idempotency-Key, so the gateway stores it once however
    often it is sent. A batch refused, or given up after
    ``give_up_after`` seconds (None: never), stops the poster: add, flush
    and close raise its BatchError, and unsent() returns the rows not
    delivered.

    ``url`` is the gateway's base URL (http or https); ``token`` one of its
    API_TOKENS, sent as a bearer token; ``ca_file`` a PEM bundle of
    certificate authorities for https beside the system's (or
    ``ssl_context``). Safe for use from several threads.
    """

    def __init__(self, url: str, token: Optional[str] = None, ca_file: Optional[str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None, batch_rows: int = 500,
                 batch_bytes: int = 4 << 20, batch_delay: float = 1.0, queue_rows: int = 100_000,
                 retry_min: float = 0.5, retry_max: float = 30.0, give_up_after: Optional[float] = None,
                 request_timeout: float = 30.0, logger: Optional[logging.Logger] = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"data-gateway URL {url!r}: want http(s)://host:port")
        if retry_max < retry_min:
            raise ValueError("want retry_min <= retry_max")
        self._endpoint = url.rstrip("/") + "/data/batch"
        self._token = token
        if ssl_context is None and ca_file:
            ssl_context = ssl.create_default_context()
            ssl_context.load_verify_locations(cafile=ca_file)
        self._ssl = ssl_context
        self.batch_rows, self.batch_bytes, self.batch_delay = batch_rows, batch_bytes, batch_delay
        self.queue_rows = queue_rows
        self.retry_min, self.retry_max, self.give_up_after = retry_min, retry_max, give_up_after
        self.request_timeout = request_timeout
        self._log = logger or log
        self._cond = threading.Condition()
        self._open: dict[str, _Batch] = {}
        self._sealed: list[_Batch] = []
        self._queued = 0
        self._error: Optional[BaseException] = None
        self._closing = False
        self._stopped = False
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routing-client-rows", daemon=True)
        self._thread.start()

    # Adding and flushing.

    def add(self, uuid: str, *rows: Row | dict, timeout: Optional[float] = None) -> None:
        """Queues rows (Row, or dicts {"index": i, "data": {...}}) for the
        trigger uuid; returns once queued (waiting while queue_rows rows
        wait), not once delivered: see flush. Raises ValueError for a row
        the gateway would refuse (a negative index; data not a non-empty
        dict of camelCase keys to strings, numbers, booleans or None): none
        is queued then; the poster's BatchError; Closed; or TimeoutError
        (the rows before the one that found the queue full are queued)."""
        if not uuid:
            raise ValueError("the uuid is empty: want the trigger's uuid")
        encoded = [_encode(r, i) for i, r in enumerate(rows)]
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for row, enc in zip(rows, encoded):
                while True:
                    self._raise_if_unusable()
                    if self._queued < self.queue_rows:
                        break
                    self._cond.notify_all()
                    if not self._cond.wait(_remaining(deadline)):
                        raise TimeoutError("the row queue stayed full")
                b = self._open.get(uuid)
                if b is None:
                    b = _Batch(uuid, _new_key(), due=time.monotonic() + self.batch_delay)
                    self._open[uuid] = b
                b.rows.append(row if isinstance(row, Row) else Row(row["data"], row.get("index")))
                b.encoded.append(enc)
                b.size += len(enc) + 1
                self._queued += 1
                if len(b.rows) >= self.batch_rows or b.size >= self.batch_bytes:
                    self._seal(b)
            self._cond.notify_all()

    def flush(self, timeout: Optional[float] = None) -> None:
        """Sends every row added so far without waiting for its batch to
        fill, and returns once all are delivered; raises the poster's
        BatchError, or TimeoutError (the rows stay queued)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for b in list(self._open.values()):
                self._seal(b)
            self._cond.notify_all()
            while self._error is None and self._queued > 0:
                if self._stopped:
                    raise Closed(f"{self._queued} rows not delivered (see unsent())")
                if not self._cond.wait(_remaining(deadline)):
                    raise TimeoutError(f"{self._queued} rows not delivered yet")
            if self._error is not None:
                raise self._error

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, then stops the poster; add raises Closed afterwards.
        When the timeout passes first, the batch in flight is abandoned (the
        gateway may have stored it) and TimeoutError names the rows not
        known to be delivered, which unsent() lists."""
        err: Optional[BaseException] = None
        try:
            self.flush(timeout)
        except (TimeoutError, Closed, BatchError) as e:
            err = e
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._abort.set()
        self._thread.join()
        if err is not None:
            raise err

    def unsent(self) -> dict[str, list[Row]]:
        """The rows not delivered, per uuid in the order added (the batch
        given up first, when there is one)."""
        out: dict[str, list[Row]] = {}
        with self._cond:
            for b in self._sealed + list(self._open.values()):
                out.setdefault(b.uuid, []).extend(b.rows)
        return out

    def __enter__(self) -> "Rows":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # Posting at once.

    def post(self, uuid: str, rows: Sequence[Row | dict], traceparent: str = "", tracestate: str = "") -> list[Accepted]:
        """Sends rows for uuid now, in batches of up to batch_rows rows,
        each with its retries, and returns the answers; raises the first
        batch's BatchError (earlier batches are stored). Does not wait for
        rows queued by add. ``traceparent`` and ``tracestate`` (W3C Trace
        Context, e.g. the trigger message's headers of the same names) are
        sent with each batch: the gateway's spans, and the pushes of the
        rows, continue that trace."""
        out = []
        rows = list(rows)
        for start in range(0, len(rows), self.batch_rows):
            out.append(self.post_batch(_new_key(), uuid, rows[start:start + self.batch_rows], traceparent, tracestate))
        return out

    def post_batch(self, key: str, uuid: str, rows: Sequence[Row | dict],
                   traceparent: str = "", tracestate: str = "") -> Accepted:
        """Sends rows for uuid now as one batch under ``key``, the caller's
        Idempotency-Key (1-255 visible ASCII characters), with its retries.
        A key derived from where the rows came from (a CSV file and its
        line numbers, say) makes a batch sent again after a restart of the
        relay stored once too, within the gateway's IDEMPOTENCY_TTL; the
        same key with other rows raises BatchError with status 422.
        ``traceparent`` and ``tracestate`` as for post."""
        if not key or len(key) > 255 or any(not 0x21 <= ord(c) <= 0x7E for c in key):
            raise ValueError(f"Idempotency-Key {key!r}: want 1-255 visible ASCII characters")
        if not rows:
            raise ValueError("no rows")
        b = _Batch(uuid, key, traceparent=traceparent, tracestate=tracestate)
        for i, r in enumerate(rows):
            b.encoded.append(_encode(r, i))
            b.rows.append(r if isinstance(r, Row) else Row(r["data"], r.get("index")))
        b.build()
        return self._send(b, threading.Event())

    # The sender.

    def _raise_if_unusable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise Closed("the rows poster is closed")

    def _seal(self, b: _Batch) -> None:
        del self._open[b.uuid]
        b.build()
        self._sealed.append(b)
        self._cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    now = time.monotonic()
                    nxt = None
                    for b in list(self._open.values()):
                        if b.due <= now:
                            self._seal(b)
                        elif nxt is None or b.due < nxt:
                            nxt = b.due
                    if self._closing and (not self._sealed or self._error is not None):
                        return
                    if not self._sealed or self._error is not None:
                        self._cond.wait(None if nxt is None else max(nxt - now, 0.0))
                        if self._abort.is_set():
                            return
                        continue
                    b = self._sealed[0]
                try:
                    self._send(b, self._abort)
                    err = None
                except BatchError as e:
                    err = e
                except _Aborted:
                    return
                with self._cond:
                    if err is not None:
                        self._error = err
                        self._log.error("rows not delivered; the poster stops: %s", err)
                    else:
                        self._sealed.pop(0)
                        self._queued -= len(b.rows)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._stopped = True
                self._cond.notify_all()

    def _send(self, b: _Batch, abort: threading.Event) -> Accepted:
        delay, start = self.retry_min, time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            status, detail, retry_after, reason, acc = self._post(b)
            if acc is not None:
                if acc.replayed:
                    self._log.info("batch stored by an earlier attempt; the gateway answered with its result "
                                   "(uuid %s, Idempotency-Key %s, delivery %d)", b.uuid, b.key, acc.id)
                return acc
            fail = BatchError(b.uuid, b.key, b.rows, status, detail, attempt, reason)
            if not _retryable(status):
                raise fail
            wait = retry_after if retry_after > 0 else delay * (1 + random.random() * 0.2)
            delay = min(delay * 2, self.retry_max)
            if self.give_up_after is not None and time.monotonic() - start + wait > self.give_up_after:
                fail.reason = f"gave up after {time.monotonic() - start:.1f}s (give_up_after)" + (f": {reason}" if reason else "")
                raise fail
            self._log.warning("batch not accepted; retrying in %.2fs (uuid %s, %d rows, Idempotency-Key %s, "
                              "attempt %d, status %d): %s", wait, b.uuid, len(b.rows), b.key, attempt, status,
                              detail or reason)
            if abort.wait(wait):
                raise _Aborted()

    def _post(self, b: _Batch) -> tuple[int, str, float, str, Optional[Accepted]]:
        """One attempt: (status, detail, retry_after, reason, accepted)."""
        req = urllib.request.Request(self._endpoint, data=b.body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Idempotency-Key", b.key)
        if b.traceparent:
            req.add_header("traceparent", b.traceparent)
            if b.tracestate:
                req.add_header("tracestate", b.tracestate)
        if self._token:
            req.add_header("Authorization", "Bearer " + self._token)
        try:
            with urllib.request.urlopen(req, timeout=self.request_timeout, context=self._ssl) as resp:
                body = resp.read()
                doc = json.loads(body)
                return resp.status, "", 0.0, "", Accepted(
                    id=int(doc["id"]), uuid=str(doc["uuid"]), rows=int(doc["rows"]),
                    pushers=list(doc.get("pushers") or []),
                    replayed=resp.headers.get("Idempotent-Replayed") == "true")
        except urllib.error.HTTPError as e:
            body = e.read()
            detail = ""
            try:
                detail = str(json.loads(body).get("detail", ""))
            except (ValueError, AttributeError):
                pass
            return e.code, detail, parse_retry_after(e.headers.get("Retry-After")), "", None
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            reason = getattr(e, "reason", e)
            return 0, "", 0.0, f"{type(e).__name__}: {reason}", None


class _Aborted(Exception):
    """The poster was closed while a batch waited for its next attempt."""


def _remaining(deadline: Optional[float]) -> Optional[float]:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.0)


def _encode(row: Row | dict, i: int) -> bytes:
    if isinstance(row, Row):
        doc = row.to_json()
    elif isinstance(row, dict) and "data" in row:
        doc = {k: row[k] for k in ("index", "data") if k in row and row[k] is not None}
    else:
        raise ValueError(f"row {i}: want a Row or a dict with data")
    data = doc.get("data")
    if not isinstance(data, dict) or not data:
        raise ValueError(f"row {i}: data must be a non-empty JSON object")
    index = doc.get("index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise ValueError(f"row {i}: index {index!r}: want an integer, 0 or more")
    for k, v in data.items():
        if not isinstance(k, str) or not _CAMEL.match(k):
            raise ValueError(f"row {i}: data key {k!r}: want camelCase (^[a-z][a-zA-Z0-9]*$)")
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise ValueError(f"row {i}: data.{k}: want a string, number, boolean or None, not {type(v).__name__}")
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise ValueError(f"row {i}: {e}") from None

