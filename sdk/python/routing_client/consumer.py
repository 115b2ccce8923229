"""Receiving protocol triggers from RabbitMQ, with pika."""

from __future__ import annotations

import collections
import functools
import logging
import queue as queuelib
import random
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .trigger import Trigger, decode_trigger

log = logging.getLogger("routing_client.consumer")

DEAD_LETTER_SUFFIX = ".dead"

# Reply codes of a broker refusing a declaration or access: a reconnect
# would meet them again.
_REFUSED = {402, 403, 406, 530}


def dead_letter_name(queue: str) -> str:
    """The exchange and queue where consume dead-letters the messages of
    ``queue``: "<queue>.dead"."""
    return queue + DEAD_LETTER_SUFFIX


class Permanent(Exception):
    """Raised by a handler when retrying cannot help: the message is
    dead-lettered at once instead of being handed over again."""


@dataclass
class Message:
    """One trigger handed to a handler. ``delivery`` counts the times the
    message was handed over: 1 the first time, one more after each failure,
    lost connection or crash of a consumer holding it (the quorum queue's
    x-delivery-count + 1)."""

    trigger: Trigger
    message_id: str
    routing_key: str
    delivery: int
    redelivered: bool
    headers: dict = field(default_factory=dict)


def nodes(amqp_url: str) -> list[str]:
    """Splits an AMQP_URL value, one node or a cluster's nodes
    comma-separated, into its URLs; ValueError names a bad entry by its
    position, never showing its password."""
    parts = [p.strip() for p in amqp_url.split(",")]
    for i, p in enumerate(parts):
        u = urllib.parse.urlsplit(p)
        if not p or u.scheme not in ("amqp", "amqps") or not u.hostname:
            raise ValueError(f"AMQP URL: node {i + 1} of {len(parts)}, {_redact(p)!r}: "
                             "want amqp://user:password@host:port/vhost (or amqps://)")
    return parts


def _redact(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    if u.password is None:
        return url
    netloc = f"{u.username}:xxxxx@{u.hostname}" + (f":{u.port}" if u.port else "")
    return urllib.parse.urlunsplit(u._replace(netloc=netloc))


class _Seen:
    """The message ids handled within ``window`` seconds, at most ``size``
    of them (the oldest forgotten first)."""

    def __init__(self, window: float, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.size, self.clock = window, size, clock
        self._ids: collections.OrderedDict[str, float] = collections.OrderedDict()

    def _expire(self) -> None:
        cutoff = self.clock() - self.window
        while self._ids:
            oldest, at = next(iter(self._ids.items()))
            if at > cutoff:
                break
            del self._ids[oldest]

    def __contains__(self, message_id: str) -> bool:
        self._expire()
        return message_id in self._ids

    def add(self, message_id: str) -> None:
        self._ids.pop(message_id, None)
        self._ids[message_id] = self.clock()
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


def delivery_count(headers: Optional[dict]) -> int:
    """A message's x-delivery-count header: the times it was handed over
    before (0 when absent)."""
    value = (headers or {}).get("x-delivery-count", 0)
    return value if isinstance(value, int) else 0


def consume(amqp_url: str, binding: str, handler: Callable[[Message], Any], *, queue: str,
            exchange: str = "triggers", prefetch: int = 16, max_deliveries: int = 5,
            retry_min: float = 1.0, retry_max: float = 30.0, dedup_window: float = 3600.0,
            dedup_size: int = 100_000, reconnect_min: float = 0.5, reconnect_max: float = 30.0,
            ssl_context: Optional[ssl.SSLContext] = None, ca_file: Optional[str] = None,
            heartbeat: int = 30, shutdown_timeout: float = 30.0,
            stop: Optional[threading.Event] = None, logger: Optional[logging.Logger] = None) -> None:
    """Receives the triggers published to ``exchange`` under ``binding`` (a
    topic binding key: "OT-2.v1alpha1.#" for every OT-2 v1alpha1 trigger,
    "ChiBio.v1alpha1.ChiBio1" for one device) and calls ``handler`` with
    each, one at a time in queue order, in a worker thread, until ``stop``
    is set.

    ``amqp_url`` is one broker node or several comma-separated (AMQP_URL's
    form; amqps:// for TLS, checked against the system's roots, those of
    ``ca_file`` or ``ssl_context``): the first that answers is used, and
    when its connection fails the next, round robin, after a backoff of
    ``reconnect_min`` doubling to ``reconnect_max`` seconds.

    On each connection it declares the durable topic exchange, the durable
    quorum queue ``queue`` (dead-lettering to "<queue>.dead" after
    ``max_deliveries``: its x-delivery-limit is max_deliveries-1, part of
    the queue's declaration), the dead-letter exchange and queue, binds the
    queue and sets the prefetch. A message is acknowledged once the handler
    returns, and its message_id remembered for ``dedup_window`` seconds (at
    most ``dedup_size`` ids, in memory): a redelivery of it is acknowledged
    without calling the handler again. A handler that raises gets the
    message again after ``retry_min`` doubling to ``retry_max`` seconds,
    up to ``max_deliveries`` times in all, then it is dead-lettered;
    Permanent dead-letters it at once, and so does a body that is not a
    trigger.

    Returns once ``stop`` is set and the handler running then has returned
    (waiting up to ``shutdown_timeout`` seconds); raises ValueError for bad
    arguments and pika.exceptions.ChannelClosedByBroker when the broker
    refuses a declaration (an existing queue declared with other
    arguments) or access.
    """
    if not queue or queue.startswith("amq."):
        raise ValueError(f"queue {queue!r}: want the name of the consumer's durable queue (not amq.*)")
    if not binding:
        raise ValueError("the binding key is empty: want e.g. OT-2.v1alpha1.#")
    if prefetch < 1 or max_deliveries < 1 or dedup_size < 1 or retry_max < retry_min or reconnect_max < reconnect_min:
        raise ValueError("want prefetch, max_deliveries and dedup_size >= 1, retry_min <= retry_max, "
                         "reconnect_min <= reconnect_max")
    urls = nodes(amqp_url)
    if ssl_context is None and ca_file:
        ssl_context = ssl.create_default_context()
        ssl_context.load_verify_locations(cafile=ca_file)
    import pika  # Debian's python3-pika; imported here so the rows half needs only the standard library

    c = _Consumer(pika, urls, binding, handler, queue, exchange, prefetch, max_deliveries,
                  retry_min, retry_max, _Seen(dedup_window, dedup_size), reconnect_min, reconnect_max,
                  ssl_context, heartbeat, shutdown_timeout, stop or threading.Event(), logger or log)
    c.run()


class _Consumer:
    def __init__(self, pika: Any, nodes: list, binding: str, handler: Callable[[Message], Any], queue: str,
                 exchange: str, prefetch: int, max_deliveries: int, retry_min: float, retry_max: float,
                 seen: _Seen, reconnect_min: float, reconnect_max: float,
                 ssl_context: Optional[ssl.SSLContext], heartbeat: int, shutdown_timeout: float,
                 stop: threading.Event, logger: logging.Logger) -> None:
        self.pika, self.nodes, self.binding, self.handler = pika, nodes, binding, handler
        self.queue, self.exchange, self.prefetch = queue, exchange, prefetch
        self.max_deliveries, self.retry_min, self.retry_max = max_deliveries, retry_min, retry_max
        self.seen, self.reconnect_min, self.reconnect_max = seen, reconnect_min, reconnect_max
        self.ssl_context, self.heartbeat, self.shutdown_timeout = ssl_context, heartbeat, shutdown_timeout
        self.stop, self.log = stop, logger
        # The worker hands messages to the handler one at a time; items of
        # a lost connection are left to the broker, which hands them over
        # again.
        self.work: queuelib.Queue = queuelib.Queue()
        self.session = 0
        self.busy = threading.Event()
        self.worker = threading.Thread(target=self._work, name="routing-client-worker", daemon=True)
        self.consumed = False  # the current connection got as far as consuming

    def run(self) -> None:
        self.worker.start()
        try:
            backoff, i = self.reconnect_min, 0
            while not self.stop.is_set():
                node = self.nodes[i % len(self.nodes)]
                self.consumed = False
                try:
                    self._session(node)
                    if self.stop.is_set():
                        return
                    err: BaseException = ConnectionError("connection closed")
                except self.pika.exceptions.ChannelClosedByBroker as e:
                    if e.reply_code in _REFUSED:
                        raise
                    err = e
                except (self.pika.exceptions.AMQPError, OSError) as e:
                    err = e
                if self.consumed:
                    backoff = self.reconnect_min
                delay = backoff * (1 + random.random() * 0.25)
                backoff = min(backoff * 2, self.reconnect_max)
                self.log.warning("broker connection lost (%s: %s: %s); reconnecting to the next node in %.2fs",
                                 _redact(node), type(err).__name__, err, delay)
                i += 1
                self.stop.wait(delay)
        finally:
            self.session += 1  # whatever is still queued is left to the broker
            self.work.put(None)
            self.worker.join(self.shutdown_timeout)

    def _params(self, node: str) -> Any:
        params = self.pika.URLParameters(node)
        params.heartbeat = self.heartbeat
        params.client_properties = {"connection_name": self.queue}
        if self.ssl_context is not None and node.lower().startswith("amqps"):
            params.ssl_options = self.pika.SSLOptions(self.ssl_context, server_hostname=params.host)
        return params

    def _session(self, node: str) -> None:
        conn = self.pika.BlockingConnection(self._params(node))
        self.session += 1
        session = self.session
        try:
            ch = conn.channel()
            dead = dead_letter_name(self.queue)
            ch.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            ch.exchange_declare(dead, exchange_type="fanout", durable=True)
            ch.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_bind(dead, dead, routing_key="")
            ch.queue_declare(self.queue, durable=True, arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": dead,
                "x-delivery-limit": self.max_deliveries - 1,
            })
            ch.queue_bind(self.queue, self.exchange, routing_key=self.binding)
            ch.basic_qos(prefetch_count=self.prefetch)
            tag = ch.basic_consume(self.queue, functools.partial(self._on_message, session, conn, ch))
            self.consumed = True
            self.log.info("consuming %s from queue %s (exchange %s) on %s", self.binding, self.queue,
                          self.exchange, _redact(node))
            while not self.stop.is_set():
                conn.process_data_events(time_limit=0.2)
            # Stopping: no more deliveries; let the handler running finish
            # and its acknowledgement go out, then close.
            ch.basic_cancel(tag)
            self.session += 1
            deadline = time.monotonic() + self.shutdown_timeout
            while self.busy.is_set() and time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.1)
            conn.process_data_events(time_limit=0)
        finally:
            if session == self.session:
                self.session += 1
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a lost connection
                pass

    def _on_message(self, session: int, conn: Any, ch: Any, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.work.put((session, conn, ch, method, props, body))

    def _settle(self, conn: Any, call: Callable[[], Any], what: str, message_id: str) -> None:
        def run() -> None:
            try:
                call()
            except Exception as e:  # noqa: BLE001 - the channel went with its connection
                self.log.debug("%s of %s lost with the connection: %s", what, message_id, e)
        try:
            conn.add_callback_threadsafe(run)
        except Exception as e:  # noqa: BLE001 - the connection is closed
            self.log.debug("%s of %s lost with the connection: %s; the broker hands it over again", what, message_id, e)

    def _work(self) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            session, conn, ch, method, props, body = item
            if session != self.session:
                continue
            self.busy.set()
            try:
                self._handle(conn, ch, method, props, body)
            finally:
                self.busy.clear()

    def _handle(self, conn: Any, ch: Any, method: Any, props: Any, body: bytes) -> None:
        tag = method.delivery_tag
        headers = dict(props.headers or {})
        msg_id = props.message_id or ""
        try:
            trigger = decode_trigger(body)
        except ValueError as e:
            self.log.error("message %s is not a trigger (%s); dead-lettered to %s", msg_id, e,
                           dead_letter_name(self.queue))
            self._settle(conn, functools.partial(ch.basic_reject, tag, requeue=False), "rejection", msg_id)
            return
        msg_id = msg_id or trigger.uuid
        if msg_id in self.seen:
            self.log.debug("message %s is a duplicate of a handled one; acknowledged without handling", msg_id)
            self._settle(conn, functools.partial(ch.basic_ack, tag), "acknowledgement", msg_id)
            return
        message = Message(trigger=trigger, message_id=msg_id, routing_key=method.routing_key,
                          delivery=delivery_count(headers) + 1, redelivered=bool(method.redelivered),
                          headers=headers)
        try:
            self.handler(message)
        except Exception as e:  # noqa: BLE001 - a handler's failure is the message's
            if isinstance(e, Permanent) or message.delivery >= self.max_deliveries:
                self.log.error("handler failed on %s (delivery %d of at most %d): %s; dead-lettered to %s",
                               msg_id, message.delivery, self.max_deliveries, e, dead_letter_name(self.queue))
                self._settle(conn, functools.partial(ch.basic_reject, tag, requeue=False), "rejection", msg_id)
                return
            delay = min(self.retry_min * 2 ** (message.delivery - 1), self.retry_max)
            self.log.warning("handler failed on %s (delivery %d of at most %d): %s; handed over again in %.2fs",
                             msg_id, message.delivery, self.max_deliveries, e, delay)
            nack = functools.partial(ch.basic_nack, tag, requeue=True)
            self._settle(conn, lambda: conn.call_later(delay, nack), "return", msg_id)
            return
        self.seen.add(msg_id)
        self._settle(conn, functools.partial(ch.basic_ack, tag), "acknowledgement", msg_id)
