package config

import "github.com/mxgate/mxgate/scanner"

// validate lets the scanner's own types check themselves (their bounds are
// the scanner's, scanner/bounds.go), keys relative to scanner:.
func (s Scanner) validate(p *problems) {
	*p = append(*p, scanner.Under("scanner", s.Policy.Validate())...)
	*p = append(*p, scanner.Under("scanner", s.Local.Validate())...)
}
