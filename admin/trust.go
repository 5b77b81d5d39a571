package admin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Trust makes c trust the certificates in pemData for its https URL (see
// trustConfig); without it the system's authorities are trusted.
func (c *Client) Trust(pemData []byte) error {
	u, err := url.Parse(c.base)
	if err != nil {
		return fmt.Errorf("admin URL: %w", err)
	}
	cfg, err := trustConfig(pemData, u.Hostname())
	if err != nil {
		return err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	c.hc.Transport = t
	return nil
}

// trustConfig returns the TLS settings of a client of host that trusts
// the certificates in pemData: as authorities of the server's chain
// (checked for host), and each as itself. The second is for a node
// serving its own self-signed certificate: it is trusted by its bytes,
// whatever name or address (a wildcard listen reached on loopback) the
// client used, as long as it is within its validity period.
func trustConfig(pemData []byte, host string) (*tls.Config, error) {
	var certs []*x509.Certificate
	roots := x509.NewCertPool()
	for rest := pemData; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
		roots.AddCert(c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// VerifyConnection verifies: the standard check alone would refuse
		// a self-signed certificate reached by another name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the server sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			for _, c := range certs {
				if leaf.Equal(c) {
					if now := time.Now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
						return x509.CertificateInvalidError{Cert: c, Reason: x509.Expired,
							Detail: fmt.Sprintf("valid from %s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))}
					}
					return nil
				}
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			// host, not cs.ServerName: a client sends no server name for
			// an IP address, and an empty name would skip the check.
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
			return err
		},
	}, nil
}
