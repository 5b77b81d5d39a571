package admin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// TrustPEM returns the TLS settings of a client that trusts the
// certificates in pemData: as authorities of the server's chain, and each
// as itself. The second is for a node serving its own self-signed
// certificate: it is trusted by its bytes, whatever name or address (a
// wildcard listen reached on loopback) the client used, as long as it is
// within its validity period.
func TrustPEM(pemData []byte) (*tls.Config, error) {
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
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName})
			return err
		},
	}, nil
}

// SetTLS makes c use cfg for an https admin URL (see TrustPEM); without
// it the system's authorities are trusted.
func (c *Client) SetTLS(cfg *tls.Config) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	c.hc.Transport = t
}
