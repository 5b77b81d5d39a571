package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

// selfSigned makes a self-signed server certificate for dnsName only (no
// IP address), valid from notBefore for a day, and writes its PEM to a
// file.
func selfSigned(t *testing.T, dnsName string, notBefore time.Time) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dnsName},
		DNSNames: []string{dnsName}, NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "admin.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, p
}

// tlsAdmin serves an admin API over TLS with cert on 127.0.0.1 and
// returns its host:port.
func tlsAdmin(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	be, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	srv, err := admin.New(admin.Options{Token: cliToken, Quarantine: be.Quarantine, Lists: be.Lists, Log: be.Log, NodeID: "n1",
		Status: func(context.Context) any { return node.StatusView{Node: "n1", Role: "single", Healthy: true} }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return testenv.Serve(t, func(ctx context.Context, ln net.Listener) error {
		return srv.Serve(ctx, tls.NewListener(ln, cfg))
	})
}

// The admin API over TLS: --cacert (or MXGATE_CACERT) trusts the node's
// own self-signed certificate, reached by an address it does not name;
// host:port with a certificate is https; an untrusted certificate, an
// expired one, http against the TLS port and https against a plain one
// each end with EX_PROTOCOL and say what is wrong.
func TestAdminOverTLS(t *testing.T) {
	clearAdminEnv(t)
	cert, certFile := selfSigned(t, "gw1.mxgate.test", time.Now().Add(-time.Hour))
	_, otherFile := selfSigned(t, "gw1.mxgate.test", time.Now().Add(-time.Hour))
	expired, expiredFile := selfSigned(t, "gw1.mxgate.test", time.Now().Add(-48*time.Hour))
	addr := tlsAdmin(t, cert)
	expiredAddr := tlsAdmin(t, expired)
	plain := strings.TrimPrefix(walkAdmin(t), "http://")

	for _, tt := range []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string
	}{
		{"pinned by --cacert, https URL", []string{"--admin", "https://" + addr, "--cacert", certFile}, nil, 0, ""},
		{"host:port with --cacert is https", []string{"--admin", addr, "--cacert", certFile}, nil, 0, ""},
		{"MXGATE_CACERT", []string{"--admin", addr}, map[string]string{envCACert: certFile}, 0, ""},
		{"no certificate trusted", []string{"--admin", "https://" + addr}, nil, exitProtocol, "mxgate: cannot reach the admin API at https://" + addr + ": tls: failed to verify certificate: x509: "},
		{"another certificate", []string{"--admin", addr, "--cacert", otherFile}, nil, exitProtocol, "mxgate: cannot reach the admin API at https://" + addr + ": x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{"the pinned certificate expired", []string{"--admin", expiredAddr, "--cacert", expiredFile}, nil, exitProtocol, "mxgate: cannot reach the admin API at https://" + expiredAddr + ": x509: certificate has expired or is not yet valid: valid from "},
		{"http against the TLS port", []string{"--admin", addr}, nil, exitProtocol, "mxgate: Client sent an HTTP request to an HTTPS server. (HTTP 400); the admin API is served over TLS: use an https:// URL, or --cacert\n"},
		{"https against a plain port", []string{"--admin", plain, "--cacert", certFile}, nil, exitProtocol, "mxgate: cannot reach the admin API at https://" + plain + ": "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := execute(t.Context(), append([]string{"status", "--token", cliToken}, tt.args...), &out, &errb)
			if code != tt.code || !strings.HasPrefix(errb.String(), tt.stderr) || (tt.stderr == "") != (errb.Len() == 0) {
				t.Errorf("status %d, stderr %q; want %d, %q", code, errb.String(), tt.code, tt.stderr)
			}
			if code == 0 && !strings.Contains(out.String(), "ROLE        single\n") {
				t.Errorf("status printed:\n%s", out.String())
			}
		})
	}
}
