package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// certLoader serves a key pair from files and loads it again when either
// file changes (checked at most once a second), so certificates can be
// renewed in place. A renewal that cannot be loaded is logged and the
// previous pair is kept.
type certLoader struct {
	certFile, keyFile string
	log               hclog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func newCertLoader(certFile, keyFile string, log hclog.Logger) (*certLoader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS_CERT_FILE and TLS_KEY_FILE: set both, or neither")
	}
	c := &certLoader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.stamps()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certLoader) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, f := range []struct{ name, path string }{{"TLS_CERT_FILE", c.certFile}, {"TLS_KEY_FILE", c.keyFile}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return out, fmt.Errorf("%s=%q: %w", f.name, f.path, err)
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

func (c *certLoader) load(stamp [2]time.Time) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE=%q, TLS_KEY_FILE=%q: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

func (c *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < time.Second {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.stamps()
	if err != nil || stamp == c.stamp {
		return c.cert, nil
	}
	if err := c.load(stamp); err != nil {
		c.log.Error("renewed TLS certificate not loaded; keeping the previous one", "error", err)
		c.stamp = stamp // do not retry a broken pair on every handshake
		return c.cert, nil
	}
	c.log.Info("TLS certificate reloaded", "cert", c.certFile)
	return c.cert, nil
}
