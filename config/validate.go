package config

// Validate reports every problem of c at once (errors.Join), each naming its
// key, so that one edit-and-retry fixes a file. Each section checks itself
// (validate_<section>.go), in the order of the file; cluster keys are
// checked only when the cluster is enabled.
func (c Config) Validate() error {
	var p problems
	c.Node.validate(&p)
	c.SMTP.validate(&p)
	c.Downstream.validate(&p)
	c.Scanner.validate(&p)
	c.Store.validate(&p)
	c.Admin.validate(&p)
	c.Reports.validate(&p)
	c.Digest.validate(&p)
	if c.Cluster.Enabled {
		c.Cluster.validate(&p, c.Node.ID)
	}
	return p.err()
}
