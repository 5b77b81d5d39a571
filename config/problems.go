package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mxgate/mxgate/scanner"
)

// problems collects what Validate finds, each problem naming its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	// A SettingError, as the scanner's own problems are, so that Parse can
	// find the key in the file and name its line (withLines).
	*p = append(*p, &scanner.SettingError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error { return errors.Join(p...) }

func (p *problems) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func (p *problems) positive(key string, v int64) {
	if v <= 0 {
		p.add(key, "must be positive, got %d", v)
	}
}

// countUpTo checks a count that must be positive and at most max.
func (p *problems) countUpTo(key string, v, max int64, unit string) {
	p.positive(key, v)
	p.atMost(key, v, max, unit)
}

// durationUpTo checks a duration that must be positive and at most max.
func (p *problems) durationUpTo(key string, d Duration, max time.Duration) {
	if d.Duration <= 0 {
		p.add(key, "must be a positive duration, got %s", d.Duration)
	}
	p.durationAtMost(key, d, max)
}

// atMost refuses v above max; unit, when given, says max in words.
func (p *problems) atMost(key string, v, max int64, unit string) {
	if v <= max {
		return
	}
	if unit != "" {
		p.add(key, "must be at most %d (%s), got %d", max, unit, v)
		return
	}
	p.add(key, "must be at most %d, got %d", max, v)
}

func (p *problems) durationAtMost(key string, d Duration, max time.Duration) {
	if d.Duration > max {
		p.add(key, "must be at most %s, got %s", max, d.Duration)
	}
}

func (p *problems) cidrs(key string, list []string) {
	for i, s := range list {
		if _, err := netip.ParsePrefix(s); err != nil {
			hint := ""
			if _, err := netip.ParseAddr(s); err == nil {
				hint = " (a single address is written with /32 or /128)"
			}
			p.add(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR%s", s, hint)
		}
	}
}

// listenAddr checks host:port for a listener: the host may be empty (all
// addresses), an IP or a name; port 0 picks a free port.
func (p *problems) listenAddr(key, a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		p.add(key, "%q is not host:port", a)
		return false
	}
	if !validPort(port, true) {
		p.add(key, "%q: port must be 0-65535", a)
		return false
	}
	if host != "" && !validHost(host) {
		p.add(key, "%q: %q is not an IP address or host name", a, host)
		return false
	}
	return true
}

// dialAddr checks host:port of a server to connect to.
func (p *problems) dialAddr(key, a string) {
	host, port, err := net.SplitHostPort(a)
	switch {
	case err != nil:
		p.add(key, "%q is not host:port", a)
	case host == "" || !validHost(host):
		p.add(key, "%q: the host must be an IP address or host name", a)
	case !validPort(port, false):
		p.add(key, "%q: port must be 1-65535", a)
	}
}

func (p *problems) readable(key, path string) bool {
	// Stat first: opening a FIFO or device would block or read forever.
	st, err := os.Stat(path)
	if err == nil && !st.Mode().IsRegular() {
		p.add(key, "%s is not a regular file", path)
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		p.add(key, "cannot read %s: %v", path, unwrapPath(err))
		return false
	}
	f.Close()
	return true
}

// maxPEMFile bounds what certPair reads of a certificate or key file: a
// chain of a few certificates is a few KiB.
const maxPEMFile = 1 << 20

// certPair checks a certificate and key set together (section.cert and
// section.key): both readable, the first a PEM certificate, the second its
// private key, so that a wrong file fails the check and not the first
// handshake.
func (p *problems) certPair(section, cert, key string) {
	certKey, keyKey := section+".cert", section+".key"
	switch {
	case cert == "" && key == "":
		return
	case cert == "":
		p.add(certKey, "required when %s is set", keyKey)
		return
	case key == "":
		p.add(keyKey, "required when %s is set", certKey)
		return
	}
	certOK, keyOK := p.readable(certKey, cert), p.readable(keyKey, key)
	if !certOK || !keyOK {
		return
	}
	certPEM, err := readPEM(cert)
	if err != nil {
		p.add(certKey, "cannot read %s: %v", cert, err)
		return
	}
	keyPEM, err := readPEM(key)
	if err != nil {
		p.add(keyKey, "cannot read %s: %v", key, err)
		return
	}
	if err := checkCertificate(certPEM); err != nil {
		p.add(certKey, "%s: %v", cert, err)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		p.add(keyKey, "%s is not the private key of %s: %v", key, cert, err)
	}
}

func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err == nil && len(data) > maxPEMFile {
		err = fmt.Errorf("larger than %d bytes, not a certificate or key", maxPEMFile)
	}
	return data, err
}

// checkCertificate finds the first certificate of a PEM chain and parses it.
func checkCertificate(data []byte) error {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		switch {
		case b == nil:
			return errors.New("no PEM certificate in it (want -----BEGIN CERTIFICATE-----)")
		case b.Type != "CERTIFICATE":
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("not a valid certificate: %w", err)
		}
		return nil
	}
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
