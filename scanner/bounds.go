package scanner

import "time"

// Upper bounds of the numeric settings. Each is far above what a real
// installation needs and far below what would exhaust a node: a value past
// one is a typo or a tampered file (or revision), and is refused naming the
// key and the bound, where it used to be accepted and then grow a node
// until the kernel killed it (scanner.workers: 100000000 reserved 22 GB).
// A pool is sized from them at once, so they hold for every caller.
const (
	// MaxWorkers bounds Local.Workers: every worker holds its buffers
	// from the start; 1024 is hundreds per core on any machine and
	// enough for scans that mostly wait on a remote engine.
	MaxWorkers = 1024
	// MaxQueue bounds Local.Queue: every waiting scan holds a session and
	// its message; more than smtp.max_connections can never wait.
	MaxQueue = 100_000
	// MaxTimeout bounds Local.Timeout: an hour is beyond any real engine,
	// and keeps a stop bounded.
	MaxTimeout = time.Hour
	// MaxSimulatedDelay bounds Local.SimulatedDelay: a stand-in for a
	// remote engine's latency, which is far shorter.
	MaxSimulatedDelay = time.Minute
	// MaxThreshold bounds the absolute value of Policy.Thresholds: the
	// built-in symbols score 10 at most, so ±1000 already means "never".
	MaxThreshold = 1000
	// MaxMIMEDepth bounds Policy.MaxMIMEDepth: the walk recurses once per
	// level; real mail nests a handful of levels.
	MaxMIMEDepth = 100
	// MaxMIMEParts bounds Policy.MaxMIMEParts: each part is parsed and
	// checked; real mail has tens.
	MaxMIMEParts = 10_000

	// Bounds of the limits only code sets (Options).
	maxArchiveEntries = 100_000
	maxArchiveBytes   = 1 << 30
	maxMessageBytes   = 1 << 30
)

// checkLimits reports every code-set limit of o above its bound through bad.
func (o Options) checkLimits(bad func(string, ...any)) {
	for _, v := range []struct {
		name     string
		val, max int64
	}{
		{"max archive entries", int64(o.MaxArchiveEntries), maxArchiveEntries},
		{"max archive bytes", o.MaxArchiveBytes, maxArchiveBytes},
		{"max message bytes", o.MaxMessageBytes, maxMessageBytes},
	} {
		if v.val > v.max {
			bad("%s: %d is above the limit of %d", v.name, v.val, v.max)
		}
	}
}
