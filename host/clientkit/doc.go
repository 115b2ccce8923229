// Package clientkit holds the end-to-end tests of the service-layer kits
// (sdk/client in Go, routing_client in sdk/python) and of the example
// service-layer program (examples/servicelayer): they run against the
// real control-tower and data-gateway, RabbitMQ and, for the Python kit,
// the system Python with python3-pika.
package clientkit
