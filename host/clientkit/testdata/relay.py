"""A bioreactor relay in the style of the original chibio-relay, written
with routing_client: it consumes ChiBio triggers and posts one row per
sample back. The end-to-end test in python_test.go runs it.

Environment: AMQP_URL, AMQP_EXCHANGE, QUEUE, GATEWAY_URL; HOLD_FILE, when
set, makes the handler of a "Hold" trigger wait until that file exists.
Each handler call prints "handling <uuid>" and "handled <uuid>".
"""

import logging
import os
import sys
import threading
import time

from routing_client import Row, Rows, consume


def main() -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    rows = Rows(os.environ["GATEWAY_URL"], batch_rows=100, batch_delay=0.05, retry_min=0.05, retry_max=0.5)
    hold = os.environ.get("HOLD_FILE", "")

    def handle(message):
        t = message.trigger
        print("handling", t.uuid, flush=True)
        if t.protocol == "Hold" and hold:
            while not os.path.exists(hold):
                time.sleep(0.02)
        spec = t.wells()[0]
        for i in range(int(spec["samples"])):
            rows.add(t.uuid, Row({"sample": i, "odMeasured": round(spec["od"] + i / 100, 4)}))
        rows.flush(timeout=30)  # acknowledged only once the rows are stored
        print("handled", t.uuid, flush=True)

    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consume(os.environ["AMQP_URL"], "ChiBio.v1alpha1.#", handle, queue=os.environ["QUEUE"],
            exchange=os.environ["AMQP_EXCHANGE"], reconnect_min=0.05, reconnect_max=0.5, stop=stop)
    rows.close(timeout=10)


if __name__ == "__main__":
    main()
