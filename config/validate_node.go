package config

func (n Node) validate(p *problems) {
	if !validNodeID(n.ID) {
		p.add("node.id", "%q is not a node id: 1-64 letters, digits, '.', '_' or '-'", n.ID)
	}
	if n.DataDir == "" {
		p.add("node.data_dir", "required")
	}
	p.oneOf("node.log_level", n.LogLevel, "debug", "info", "warn", "error")
	p.oneOf("node.log_format", n.LogFormat, "text", "json")
}
