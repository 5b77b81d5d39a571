// Package certfile is a TLS certificate and key read from two PEM files,
// read again on demand (SIGHUP) without restarting the listener that
// serves it: the renewal of a certificate (certbot, an internal CA) is then
// a file copy and a reload, as it is for Postfix.
package certfile

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Pair is a certificate and key pair served through GetCertificate; the
// handshakes after a successful Reload get the new one. Make it with Load.
type Pair struct {
	cur atomic.Pointer[loaded]
}

type loaded struct {
	certFile, keyFile string
	cert              *tls.Certificate
}

// Load reads the pair from certFile (the chain, leaf first) and keyFile.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{}
	if err := p.Reload(certFile, keyFile); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the pair again, from the same files or from others; on an
// error the pair served stays as it was.
func (p *Pair) Reload(certFile, keyFile string) error {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	p.cur.Store(&loaded{certFile: certFile, keyFile: keyFile, cert: &c})
	return nil
}

// Files are the files the pair served was read from.
func (p *Pair) Files() (certFile, keyFile string) {
	l := p.cur.Load()
	return l.certFile, l.keyFile
}

// GetCertificate is tls.Config.GetCertificate: the pair as last read.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load().cert, nil
}

// ServerConfig is a server's TLS configuration serving the pair: TLS 1.2
// at least, as the SMTP front end's STARTTLS.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{GetCertificate: p.GetCertificate, MinVersion: tls.VersionTLS12}
}
