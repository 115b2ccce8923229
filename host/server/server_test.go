package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/server"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial and
// its key, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "routing test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func serve(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	srv, err := server.Listen("127.0.0.1:0", mux.NewRouter(), opts, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

func TestTLSServesHTTPSAndPicksUpARenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, 1)
	srv := serve(t, server.Options{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %q is not https", srv.URL())
	}

	// get fetches /healthz trusting only roots, on a new connection, and
	// returns the serial of the certificate the server showed.
	get := func(roots ...*x509.Certificate) (int64, error) {
		pool := x509.NewCertPool()
		for _, c := range roots {
			pool.AddCert(c)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := client.Get(srv.URL() + "/healthz")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ok") {
			t.Fatalf("healthz over TLS: %d %s", resp.StatusCode, body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
	}
	if serial, err := get(first); err != nil || serial != 1 {
		t.Fatalf("first certificate: serial %d, %v", serial, err)
	}
	// Plain HTTP to the TLS port gets no answer from the handlers.
	if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served on the TLS port")
		}
	}

	// Renewal: new files in place; the next handshakes use them.
	second := writeCert(t, certFile, keyFile, 2)
	later := time.Now().Add(2 * time.Second)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		serial, err := get(first, second)
		if err == nil && serial == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served: serial %d, %v", serial, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A broken renewal keeps the last good pair.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if serial, err := get(second); err != nil || serial != 2 {
		t.Fatalf("after a broken renewal: serial %d, %v; want the previous certificate", serial, err)
	}
}

func TestTLSFilesAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	other := filepath.Join(dir, "other-key.pem")
	writeCert(t, filepath.Join(dir, "other-cert.pem"), other, 2)
	for _, tt := range []struct {
		name      string
		cert, key string
		wantInErr string
	}{
		{"missing cert", filepath.Join(dir, "nope.pem"), keyFile, "TLS_CERT_FILE"},
		{"missing key", certFile, filepath.Join(dir, "nope.pem"), "TLS_KEY_FILE"},
		{"key of another cert", certFile, other, "TLS_CERT_FILE"},
		{"only a cert", certFile, "", "set both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.Listen("127.0.0.1:0", mux.NewRouter(), server.Options{TLSCertFile: tt.cert, TLSKeyFile: tt.key}, hclog.NewNullLogger())
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("error %v, want one naming %s", err, tt.wantInErr)
			}
		})
	}
}
