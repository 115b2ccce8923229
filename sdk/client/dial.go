package client

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DialOptions configure DialAMQP. Zero values take the defaults given.
type DialOptions struct {
	// Timeout bounds connecting, the AMQP handshake included: 10s.
	Timeout time.Duration
	// TLS is the TLS configuration of an amqps:// node (a private CA's
	// RootCAs, a client certificate); nil uses the system's roots
	// (SSL_CERT_FILE is honoured) and the node's host name. It is not
	// modified: the connection uses a copy.
	TLS *tls.Config
	// ConnectionName is shown by the broker's management tools.
	ConnectionName string
}

// DialAMQP connects to node (an amqp:// or amqps:// URL) within
// o.Timeout, the AMQP handshake included, with 10s heartbeats. It gives
// up as soon as ctx ends, during the handshake too. ctx bounds only the
// connecting: the connection outlives it.
func DialAMQP(ctx context.Context, node string, o DialOptions) (*amqp.Connection, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var tlsConfig *tls.Config
	if o.TLS != nil {
		tlsConfig = o.TLS.Clone()
	}
	var (
		mu sync.Mutex
		nc net.Conn
	)
	// Cancelling ctx ends the handshake: its reads and writes time out.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if nc != nil {
			_ = nc.SetDeadline(time.Now())
		}
	})
	defer stop()
	return amqp.DialConfig(node, amqp.Config{
		Heartbeat:       10 * time.Second,
		TLSClientConfig: tlsConfig,
		Properties:      amqp.Table{"connection_name": o.ConnectionName},
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The client clears the deadline once the handshake is done.
			mu.Lock()
			defer mu.Unlock()
			nc = conn
			deadline := time.Now().Add(timeout)
			if ctx.Err() != nil {
				deadline = time.Now()
			}
			if err := conn.SetDeadline(deadline); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		},
	})
}
