package node

import (
	"fmt"

	"github.com/mxgate/mxgate/certfile"
	"github.com/mxgate/mxgate/config"
)

// loadCerts reads the certificates the node serves: smtp.tls for
// STARTTLS, admin.tls for the admin API.
func (n *Node) loadCerts() error {
	var err error
	if n.smtpCert, err = loadCert("smtp.tls", n.cfg.SMTP.TLS.Cert, n.cfg.SMTP.TLS.Key); err != nil {
		return err
	}
	if n.cfg.Admin.Listen != "" {
		n.adminCert, err = loadCert("admin.tls", n.cfg.Admin.TLS.Cert, n.cfg.Admin.TLS.Key)
	}
	return err
}

func loadCert(section, cert, key string) (*certfile.Pair, error) {
	if cert == "" {
		return nil, nil
	}
	p, err := certfile.Load(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	return p, nil
}

// reloadCerts reads the served certificates again (SIGHUP) from the files
// cfg names, which may be new ones, and returns cfg with the files served
// now (the running file says the same): a certificate that does not load
// is reported and the one served stays. Turning TLS on or off takes a restart (the listener changes), so
// cfg keeps what it says there and Reload reports it.
func (n *Node) reloadCerts(cfg config.Config) config.Config {
	if n.smtpCert != nil && cfg.SMTP.TLS.Cert != "" {
		cfg.SMTP.TLS.Cert, cfg.SMTP.TLS.Key = n.reloadCert(n.smtpCert, "smtp.tls", cfg.SMTP.TLS.Cert, cfg.SMTP.TLS.Key)
		n.file.SMTP.TLS.Cert, n.file.SMTP.TLS.Key = cfg.SMTP.TLS.Cert, cfg.SMTP.TLS.Key
	}
	if n.adminCert != nil && cfg.Admin.TLS.Enabled() {
		cfg.Admin.TLS.Cert, cfg.Admin.TLS.Key = n.reloadCert(n.adminCert, "admin.tls", cfg.Admin.TLS.Cert, cfg.Admin.TLS.Key)
		n.file.Admin.TLS = cfg.Admin.TLS
	}
	return cfg
}

func (n *Node) reloadCert(p *certfile.Pair, section, cert, key string) (string, string) {
	if err := p.Reload(cert, key); err != nil {
		n.log.Error("SIGHUP: "+section+" not read again; the certificate served stays", "err", err)
		return p.Files()
	}
	attrs := []any{"cert", cert}
	if c, _ := p.GetCertificate(nil); c.Leaf != nil {
		attrs = append(attrs, "subject", c.Leaf.Subject.String(), "not_after", c.Leaf.NotAfter.UTC())
	}
	n.log.Info("SIGHUP: "+section+" certificate read again", attrs...)
	return cert, key
}
