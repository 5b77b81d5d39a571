package clusterconf

import "github.com/mxgate/mxgate/config"

// checkBounds refuses the values the node file refuses (config/bounds.go):
// a revision reaches every node without a restart, so an absurd one must
// not get past `mxgate config set`.
func (s Settings) checkBounds(add func(key, format string, args ...any)) {
	config.ThresholdBounds(s.Scanner.Thresholds, add)
	if d := s.Scanner.MaxMIMEDepth; d > config.MaxMIMEDepth {
		add("scanner.max_mime_depth", "must be at most %d, got %d", config.MaxMIMEDepth, d)
	}
	if n := s.Scanner.MaxMIMEParts; n > config.MaxMIMEParts {
		add("scanner.max_mime_parts", "must be at most %d, got %d", config.MaxMIMEParts, n)
	}
	for id, w := range s.Weights {
		if w > config.MaxWeight {
			add("weights."+id, "must be at most %d, got %d", config.MaxWeight, w)
		}
	}
}
