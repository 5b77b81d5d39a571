package config

func (a Admin) validate(p *problems) {
	if a.Listen == "" {
		return
	}
	if p.listenAddr("admin.listen", a.Listen) && a.Token == "" && !loopbackListen(a.Listen) {
		p.add("admin.token", "required when admin.listen (%s) is not a loopback address", a.Listen)
	}
}
