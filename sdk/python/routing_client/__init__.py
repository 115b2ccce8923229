"""The routing layer's kit for service-layer programs in Python.

The two halves of a relay such as a bioreactor's or a plate reader's,
the Python counterpart of the Go kit (sdk/client):

- ``consume`` receives the protocol triggers the control-tower publishes to
  RabbitMQ (with pika, Debian's python3-pika): a durable quorum queue of
  the caller's naming bound to the triggers exchange, acknowledged only
  once the handler returns, reconnecting with backoff across the nodes of
  an AMQP_URL list, de-duplicated on message_id, poison messages
  dead-lettered to ``<queue>.dead``.
- ``Rows`` posts data rows to the data-gateway (with urllib, the standard
  library): batched by size and time, each batch under an Idempotency-Key
  kept across its retries, retried on 429, 5xx and network errors
  honouring Retry-After, never dropped without an error the caller sees.

    from routing_client import Row, Rows, consume

    rows = Rows("http://127.0.0.1:8001")

    def handle(message):
        trigger = message.trigger
        for i, well in enumerate(trigger.wells()):
            rows.add(trigger.uuid, Row({"odMeasured": 0.42}, index=i))
        rows.flush()

    consume("amqp://guest:guest@127.0.0.1:5672/", "ChiBio.v1alpha1.#", handle, queue="chibio-relay")
"""

__version__ = "0.1.0"

from .consumer import DEAD_LETTER_SUFFIX, Message, Permanent, consume, dead_letter_name, nodes  # noqa: E402
from .rows import Accepted, BatchError, Closed, Row, Rows  # noqa: E402
from .trigger import Plate, Trigger, decode_trigger  # noqa: E402

__all__ = [
    "Accepted",
    "BatchError",
    "Closed",
    "DEAD_LETTER_SUFFIX",
    "Message",
    "Permanent",
    "Plate",
    "Row",
    "Rows",
    "Trigger",
    "consume",
    "dead_letter_name",
    "decode_trigger",
    "nodes",
]
