package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func (c testCert) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

// issue makes a certificate for the names and IPs given, signed by parent
// (nil = self-signed); isCA makes it an authority.
func issue(t testing.TB, parent *testCert, isCA bool, cn string, ips ...net.IP) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.DNSNames = nil
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: c, key: key, der: der}
}

// tlsServer runs a real TLS HTTP server answering 200 with leaf.
func tlsServer(t *testing.T, leaf testCert) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.der}, PrivateKey: leaf.key}}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.URL
}

func TestTrustPEM(t *testing.T) {
	ca := issue(t, nil, true, "mxgate test CA")
	byCA := issue(t, &ca, false, "gw1.mxgate.test", net.IPv4(127, 0, 0, 1))
	byCAOtherName := issue(t, &ca, false, "gw2.mxgate.test")
	self := issue(t, nil, false, "gw3.mxgate.test")
	stranger := issue(t, nil, false, "gw3.mxgate.test", net.IPv4(127, 0, 0, 1))
	selfIP := issue(t, nil, false, "gw4.mxgate.test", net.IPv4(127, 0, 0, 1))
	for _, tt := range []struct {
		name   string
		server testCert
		trust  []byte
		want   string // "" = trusted
	}{
		{"signed by the trusted CA, for 127.0.0.1", byCA, ca.pem(), ""},
		{"signed by the trusted CA, for another name", byCAOtherName, ca.pem(), "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{"the node's own self-signed certificate, any name", self, self.pem(), ""},
		{"one of several in the file", self, append(ca.pem(), self.pem()...), ""},
		{"a stranger with the same name", stranger, self.pem(), "x509: certificate signed by unknown authority"},
		{"a CA's certificate does not trust what it did not sign", selfIP, ca.pem(), "x509: certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := tlsServer(t, tt.server)
			c, err := NewClient(url, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Trust(tt.trust); err != nil {
				t.Fatal(err)
			}
			var out map[string]string
			err = c.call(t.Context(), http.MethodGet, "/x", nil, nil, &out)
			switch {
			case tt.want == "" && (err != nil || out["ok"] != "yes"):
				t.Errorf("not trusted: %v %v", err, out)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("not PEM"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")} {
		if _, err := trustConfig(bad, "127.0.0.1"); err == nil || err.Error() != "no PEM certificate in it" {
			t.Errorf("trustConfig(%q) = %v", bad, err)
		}
	}
	garbled := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})
	if _, err := trustConfig(garbled, "127.0.0.1"); err == nil || !strings.HasPrefix(err.Error(), "parse certificate: ") {
		t.Errorf("trustConfig(garbled) = %v", err)
	}
}

func FuzzTrustConfig(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""))
	f.Add(issue(f, nil, false, "gw1.mxgate.test").pem())
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := trustConfig(data, "127.0.0.1")
		if (cfg == nil) == (err == nil) {
			t.Fatalf("trustConfig = %v, %v: want one of them", cfg, err)
		}
		if err == nil && (!cfg.InsecureSkipVerify || cfg.VerifyConnection == nil) {
			t.Fatal("a config without its own verification")
		}
		if err == nil {
			// Whatever was parsed, an empty handshake is refused.
			if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil {
				t.Fatal("a connection without a certificate was trusted")
			}
		}
	})
}
