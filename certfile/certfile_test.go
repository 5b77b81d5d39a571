package certfile

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/testenv"
)

// handshake connects to a server serving p and reports whether a client
// trusting pool accepts the certificate.
func handshake(t *testing.T, p *Pair, pool *x509.CertPool) error {
	t.Helper()
	srv, cli := net.Pipe()
	defer cli.Close()
	go func() {
		defer srv.Close()
		tls.Server(srv, p.ServerConfig()).Handshake()
	}()
	return tls.Client(cli, &tls.Config{RootCAs: pool, ServerName: "mx.test"}).Handshake()
}

func TestPair(t *testing.T) {
	dir := t.TempDir()
	cert1, key1, pool1 := testenv.CertFiles(t, dir, "mx.test")
	cert2, key2, pool2 := testenv.CertFiles(t, dir, "mx.test")

	if _, err := Load(cert1, key2); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("Load of a mismatched pair: %v", err)
	}
	p, err := Load(cert1, key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, p, pool1); err != nil {
		t.Errorf("first pair: %v", err)
	}
	tests := []struct {
		name       string
		cert, key  string
		wantErr    bool
		trusted    *x509.CertPool
		wantServed string
	}{
		{"another pair", cert2, key2, false, pool2, cert2},
		{"a bad pair keeps the served one", cert1, key2, true, pool2, cert2},
		{"a missing file keeps the served one", dir + "/none.crt", key1, true, pool2, cert2},
		{"back to the first", cert1, key1, false, pool1, cert1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.Reload(tt.cert, tt.key); (err != nil) != tt.wantErr {
				t.Fatalf("Reload: %v, want error %v", err, tt.wantErr)
			}
			if err := handshake(t, p, tt.trusted); err != nil {
				t.Errorf("handshake: %v", err)
			}
			if c, _ := p.Files(); c != tt.wantServed {
				t.Errorf("Files = %s, want %s", c, tt.wantServed)
			}
		})
	}
	if c := p.ServerConfig(); c.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", c.MinVersion)
	}
}
