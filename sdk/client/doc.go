// Package client is the kit for service-layer programs written in Go (a
// robot driver, a plate reader's or a bioreactor's relay): the two halves
// of talking to the routing layer.
//
//   - Consume receives the protocol triggers the control-tower publishes
//     to RabbitMQ: a durable quorum queue of the caller's naming bound to
//     the triggers exchange, manual acknowledgements once the handler
//     returns nil, reconnection with backoff across the nodes of an
//     AMQP_URL list, de-duplication on message_id, and poison messages
//     dead-lettered to "<queue>.dead" after a number of failed deliveries.
//   - Rows posts data rows to the data-gateway: batched by size and time,
//     each batch under an Idempotency-Key that stays the same across its
//     retries (so a retry after a lost answer is stored once), retried
//     with backoff on 429, 5xx and network errors honouring Retry-After,
//     and never dropped without an error its caller sees.
//
// DialAMQP, the connecting Consume does (within a timeout, the AMQP
// handshake included, given up as soon as the context ends), serves a
// program that opens its own connections to the broker too.
//
// The package stands alone: it imports neither the host nor the plugin
// contract, and its types (Trigger, Row) are plain structs of its own
// shaped like the JSON on the wire (see the repository's README, "The
// AMQP contract" and "data-gateway").
package client
