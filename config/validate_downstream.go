package config

func (d Downstream) validate(p *problems) {
	if d.Address == "" {
		p.add("downstream.address", "required (host:port of the mail server that gets clean mail)")
	} else {
		p.dialAddr("downstream.address", d.Address)
	}
	p.durationUpTo("downstream.timeout", d.Timeout, MaxTimeout)
	if d.Helo != "" && !validHelo(d.Helo) {
		p.add("downstream.helo", "%q is not a host name or address literal", d.Helo)
	}
}
