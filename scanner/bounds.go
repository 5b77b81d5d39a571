package scanner

import (
	"math"
	"time"
)

// Upper bounds of the numeric options, the same as the node file's
// (config/bounds.go): a pool is sized from its options at once, so an
// absurd value must be refused here too, for every caller.
const (
	maxWorkers        = 1024
	maxQueue          = 100_000
	maxTimeout        = time.Hour
	maxThreshold      = 1000
	maxMIMEDepth      = 100
	maxMIMEParts      = 10_000
	maxArchiveEntries = 100_000
	maxArchiveBytes   = 1 << 30
	maxMessageBytes   = 1 << 30
)

// checkBounds reports every option above its bound through bad.
func (o Options) checkBounds(bad func(string, ...any)) {
	for _, v := range []struct {
		name     string
		val, max int64
	}{
		{"workers", int64(o.Workers), maxWorkers},
		{"queue", int64(o.Queue), maxQueue},
		{"max MIME depth", int64(o.MaxMIMEDepth), maxMIMEDepth},
		{"max MIME parts", int64(o.MaxMIMEParts), maxMIMEParts},
		{"max archive entries", int64(o.MaxArchiveEntries), maxArchiveEntries},
		{"max archive bytes", o.MaxArchiveBytes, maxArchiveBytes},
		{"max message bytes", o.MaxMessageBytes, maxMessageBytes},
	} {
		if v.val > v.max {
			bad("%s: %d is above the limit of %d", v.name, v.val, v.max)
		}
	}
	for _, v := range []struct {
		name string
		val  time.Duration
	}{{"timeout", o.Timeout}, {"simulated delay", o.SimulatedDelay}} {
		if v.val > maxTimeout {
			bad("%s: %s is above the limit of %s", v.name, v.val, maxTimeout)
		}
	}
	for _, v := range []struct {
		name string
		val  float64
	}{{"quarantine threshold", o.QuarantineThreshold}, {"reject threshold", o.RejectThreshold}} {
		if math.Abs(v.val) > maxThreshold {
			bad("%s: %g is outside -%d to %d", v.name, v.val, maxThreshold, maxThreshold)
		}
	}
}
