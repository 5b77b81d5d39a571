package clusterconf

import "github.com/mxgate/mxgate/config"

// checkBounds refuses the weights the node file refuses (config/bounds.go);
// the scanner policy's bounds are the scanner's own (Policy.Validate). A
// revision reaches every node without a restart, so an absurd one must not
// get past `mxgate config set`.
func (s Settings) checkBounds(add func(key, format string, args ...any)) {
	for id, w := range s.Weights {
		if w > config.MaxWeight {
			add("weights."+id, "must be at most %d, got %d", config.MaxWeight, w)
		}
	}
}
