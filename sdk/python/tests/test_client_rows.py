import json
import logging
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from routing_client import BatchError, Closed, Row, Rows
from routing_client.rows import parse_retry_after

quiet = logging.getLogger("test_client_rows")
quiet.addHandler(logging.NullHandler())
quiet.propagate = False


class FakeGateway:
    """A data-gateway's POST /data/batch: answers with the scripted statuses
    (202 once they are used up; -1 stores, then drops the connection) and
    stores each Idempotency-Key's batch once."""

    def __init__(self, *script: int) -> None:
        self.script = list(script)
        self.attempts: list[dict] = []
        self.stored: dict[str, list] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                with gw.lock:
                    gw.attempts.append({"key": key, "auth": self.headers.get("Authorization"), "at": time.monotonic(),
                                        "uuid": body["uuid"], "rows": body["rows"], "path": self.path,
                                        "type": self.headers.get("Content-Type"),
                                        "traceparent": self.headers.get("traceparent")})
                    status = gw.script.pop(0) if gw.script else 202
                    if status == -1:
                        gw._store(key, body["rows"])
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if status != 202:
                        self.send_response(status)
                        if status in (429, 503):
                            self.send_header("Retry-After", "1")
                        self.send_header("Content-Type", "application/problem+json")
                        self.end_headers()
                        self.wfile.write(json.dumps({"status": status, "detail": f"scripted {status}"}).encode())
                        return
                    replayed = key in gw.stored
                    gw._store(key, body["rows"])
                    self.send_response(202)
                    if replayed:
                        self.send_header("Idempotent-Replayed", "true")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps({"id": gw.order.index(key) + 1, "uuid": body["uuid"],
                                                 "rows": len(body["rows"]), "pushers": ["jsonl"]}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _store(self, key: str, rows: list) -> None:
        if key not in self.stored:
            self.stored[key] = rows
            self.order.append(key)

    def batches(self) -> list:
        with self.lock:
            return [self.stored[k] for k in self.order]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def row(i: int) -> Row:
    return Row({"n": i, "odMeasured": 0.5}, index=i)


class RowsTest(unittest.TestCase):
    def gateway(self, *script: int) -> FakeGateway:
        gw = FakeGateway(*script)
        self.addCleanup(gw.close)
        return gw

    def poster(self, gw: FakeGateway, **kw) -> Rows:
        kw.setdefault("retry_min", 0.01)
        kw.setdefault("retry_max", 0.05)
        p = Rows(gw.url, logger=quiet, **kw)
        self.addCleanup(lambda: self._close(p))
        return p

    @staticmethod
    def _close(p: Rows) -> None:
        try:
            p.close(timeout=5)
        except Exception:  # noqa: BLE001 - the test checked it
            pass

    def test_batches_by_size_in_order_with_token(self) -> None:
        gw = self.gateway()
        p = self.poster(gw, token="secret-token-0123456789", batch_rows=4, batch_delay=3600)
        for i in range(10):
            p.add("u1", row(i))
        p.flush(timeout=10)
        batches = gw.batches()
        self.assertEqual([len(b) for b in batches], [4, 4, 2])
        flat = [r for b in batches for r in b]
        self.assertEqual(flat[3], {"index": 3, "data": {"n": 3, "odMeasured": 0.5}})
        self.assertEqual([r["index"] for r in flat], list(range(10)))
        for a in gw.attempts:
            self.assertEqual(a["auth"], "Bearer secret-token-0123456789")
            self.assertEqual(len(a["key"]), 32)
            self.assertEqual(a["path"], "/data/batch")
            self.assertEqual(a["type"], "application/json")

    def test_batch_sent_after_its_delay(self) -> None:
        gw = self.gateway()
        p = self.poster(gw, batch_rows=100, batch_delay=0.2)
        start = time.monotonic()
        p.add("u1", row(0), {"index": 1, "data": {"n": 1}})
        deadline = start + 5
        while not gw.attempts and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(gw.attempts, "batch never sent")
        self.assertGreaterEqual(gw.attempts[0]["at"] - start, 0.15)
        self.assertEqual(len(gw.attempts[0]["rows"]), 2)

    def test_retries_under_one_key_until_stored_once(self) -> None:
        gw = self.gateway(503, 429, -1)
        p = self.poster(gw)
        (acc,) = p.post("u1", [row(0), row(1), row(2)])
        self.assertEqual(len(gw.attempts), 4)
        self.assertEqual({a["key"] for a in gw.attempts}, {gw.attempts[0]["key"]})
        self.assertGreaterEqual(gw.attempts[2]["at"] - gw.attempts[1]["at"], 0.9, "Retry-After: 1 not waited for")
        self.assertEqual(len(gw.batches()), 1)
        self.assertTrue(acc.replayed)
        self.assertEqual(acc.rows, 3)

    def test_refusal_is_sticky_and_nothing_is_dropped(self) -> None:
        gw = self.gateway(422)
        p = self.poster(gw, batch_rows=2, batch_delay=3600)
        p.add("u1", row(0), row(1), row(2))
        with self.assertRaises(BatchError) as cm:
            p.flush(timeout=10)
        err = cm.exception
        self.assertEqual((err.status, err.detail, err.attempts, len(err.rows)), (422, "scripted 422", 1, 2))
        self.assertIn("scripted 422", str(err))
        with self.assertRaises(BatchError):
            p.add("u1", row(3))
        self.assertEqual([r.index for r in p.unsent()["u1"]], [0, 1, 2])
        with self.assertRaises(BatchError):
            p.close(timeout=5)

    def test_give_up_after(self) -> None:
        gw = self.gateway(*[500] * 50)
        p = self.poster(gw, give_up_after=0.1)
        with self.assertRaises(BatchError) as cm:
            p.post("u1", [row(0)])
        self.assertEqual(cm.exception.status, 500)
        self.assertGreaterEqual(cm.exception.attempts, 2)
        self.assertIn("give_up_after", str(cm.exception))

    def test_close_timeout_keeps_the_rows(self) -> None:
        gw = self.gateway(*[503] * 50)
        p = self.poster(gw)
        p.add("u1", row(0), row(1))
        with self.assertRaises(TimeoutError):
            p.close(timeout=0.3)
        self.assertEqual(len(p.unsent()["u1"]), 2)
        with self.assertRaises(Closed):
            p.add("u1", row(2))

    def test_checks_and_backpressure(self) -> None:
        gw = self.gateway()
        p = self.poster(gw, batch_rows=2, queue_rows=2, batch_delay=3600)
        for bad in ([1], "x"):
            with self.assertRaises(ValueError):
                p.add("u1", Row(bad))  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            p.add("", row(0))
        for bad in (Row({"x": float("nan")}), Row({}), Row({"Key_One": 1}), Row({"a": {"b": 1}}), Row({"a": [1]}),
                    Row({"a": 1}, index=-1), {"index": 1}):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                p.add("u1", bad)
        for i in range(20):
            p.add("u1", row(i))
        p.flush(timeout=10)
        self.assertEqual(len(gw.batches()), 10)
        with self.assertRaises(ValueError):
            Rows("ftp://x")

    def test_post_batch_with_the_callers_key(self) -> None:
        gw = self.gateway()
        p = self.poster(gw)
        first = p.post_batch("chibio-1_data.csv:1-3", "u1", [row(0), row(1)])
        again = p.post_batch("chibio-1_data.csv:1-3", "u1", [row(0), row(1)])
        self.assertEqual((first.id, first.replayed, again.id, again.replayed), (1, False, 1, True))
        for bad in ("", "two words", "k" * 256, "café"):
            with self.assertRaises(ValueError):
                p.post_batch(bad, "u1", [row(0)])

    def test_trace_context_is_sent(self) -> None:
        gw = self.gateway()
        p = self.poster(gw)
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        p.post("u1", [row(0)], traceparent=traceparent)
        p.post("u2", [row(1)])
        self.assertEqual([a["traceparent"] for a in gw.attempts], [traceparent, None])

    def test_parse_retry_after(self) -> None:
        self.assertEqual(parse_retry_after("5"), 5.0)
        self.assertEqual(parse_retry_after(None), 0.0)
        self.assertEqual(parse_retry_after("soon"), 0.0)
        from email.utils import formatdate
        self.assertTrue(1 <= parse_retry_after(formatdate(time.time() + 3, usegmt=True)) <= 3)


if __name__ == "__main__":
    unittest.main()
