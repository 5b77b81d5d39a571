package testenv

import (
	"strings"
	"time"
)

// VRRPTransition is one `msg="vrrp transition"` line of a node's log (the
// text handler's key=value form, which keeps milliseconds): what the tests
// of the cluster read to order and time state changes across nodes.
type VRRPTransition struct {
	At               time.Time
	From, To, Reason string
}

// VRRPTransitions parses every transition line of log, oldest first.
func VRRPTransitions(log string) []VRRPTransition {
	var out []VRRPTransition
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `msg="vrrp transition"`) {
			continue
		}
		var tr VRRPTransition
		for f := range strings.FieldsSeq(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"`)
			switch k {
			case "time":
				tr.At, _ = time.Parse(time.RFC3339Nano, v)
			case "from":
				tr.From = v
			case "to":
				tr.To = v
			case "reason":
				tr.Reason = v
			}
		}
		out = append(out, tr)
	}
	return out
}
