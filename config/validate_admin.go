package config

func (a Admin) validate(p *problems) {
	if a.Listen == "" {
		return
	}
	if p.listenAddr("admin.listen", a.Listen) && a.Token == "" && !loopbackListen(a.Listen) {
		p.add("admin.token", "required when admin.listen (%s) is not a loopback address", a.Listen)
	}
	p.certPair("admin.tls", a.TLS.Cert, a.TLS.Key)
	if a.MetricsAuth && a.Token == "" {
		p.add("admin.metrics_auth", "needs admin.token (the token /metrics then asks for)")
	}
}

// PlainRemote reports whether the admin API listens beyond loopback
// without TLS: the token and every answer (quarantined mail among them)
// then cross the network in clear.
func (a Admin) PlainRemote() bool {
	return a.Listen != "" && !a.TLS.Enabled() && !loopbackListen(a.Listen)
}
