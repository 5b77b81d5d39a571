package scanner

import (
	"fmt"
	"math"
	"time"

	"github.com/mxgate/mxgate/config/duration"
)

// Engines are the cluster-wide settings of the outside engines: how long
// each may take, how many calls it gets at once, what its failure does and
// how its scores count. Where each engine listens is node-local (Local).
type Engines struct {
	Clamd  EngineSettings `yaml:"clamd" json:"clamd"`
	Rspamd EngineSettings `yaml:"rspamd" json:"rspamd"`
	Spamd  EngineSettings `yaml:"spamd" json:"spamd"`
}

// EngineSettings are one engine's settings.
type EngineSettings struct {
	// Timeout bounds one call to the engine (waiting for a connection
	// included); scanner.timeout bounds the whole scan besides.
	Timeout duration.Duration `yaml:"timeout" json:"timeout"`
	// MaxConnections is the most calls in flight to the engine from this
	// node; more wait for a turn within Timeout.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// OnError is what a message gets when the engine gave no verdict
	// (down, too slow, a reply not understood): tempfail (451 4.7.0),
	// quarantine, or accept (delivered, marked with the symbol
	// <ENGINE>_FAIL and the header X-Mxgate-Engine-Failed). Never read as
	// clean.
	OnError Action `yaml:"on_error" json:"on_error"`
	// MaxSize is the largest message sent to the engine, in bytes; 0 = no
	// limit of mxgate's own. clamd: set it to clamd's StreamMaxLength (a
	// larger message is not scanned: on_limit). spamd: larger messages are
	// skipped and marked SPAMD_TOO_LARGE (spamd is slow on big mail).
	MaxSize int64 `yaml:"max_size" json:"max_size"`
	// ScoreWeight multiplies the engine's symbol scores before they add
	// into mxgate's score; 0 = its symbols are shown but do not count.
	ScoreWeight float64 `yaml:"score_weight" json:"score_weight"`
}

// Engine names, as in symbols, settings and health reports.
const (
	EngineClamd  = "clamd"
	EngineRspamd = "rspamd"
	EngineSpamd  = "spamd"
)

// Bounds of the engine settings.
const (
	// MaxEngineConnections bounds max_connections: each is a socket and,
	// on the engine, a worker; 1024 matches MaxWorkers.
	MaxEngineConnections = MaxWorkers
	// MaxEngineSize bounds max_size: the largest message the front end
	// could take.
	MaxEngineSize = maxMessageBytes
	// MaxScoreWeight bounds score_weight: spamd's GTUBE scores 1000 already.
	MaxScoreWeight = 100
)

// defaultEngines fail closed: every engine's failure is a 451 by default,
// so a message is never delivered unscanned unless the admin says so; the
// sender's queue holds it, and in a cluster the dispatcher sends scans to
// nodes whose engines answer first. max_size follows the daemons' own
// defaults (clamd's StreamMaxLength 25M on Debian, spamc's 500 KB).
func defaultEngines() Engines {
	d := func(timeout time.Duration, conns int, maxSize int64) EngineSettings {
		return EngineSettings{
			Timeout: duration.Duration{Duration: timeout}, MaxConnections: conns,
			OnError: ActionTempfail, MaxSize: maxSize, ScoreWeight: 1,
		}
	}
	return Engines{
		Clamd:  d(30*time.Second, 10, 25<<20),
		Rspamd: d(20*time.Second, 32, 0),
		Spamd:  d(30*time.Second, 5, 500_000),
	}
}

// Settings returns the settings of the engine called name (zero for an
// unknown name).
func (e Engines) Settings(name string) EngineSettings {
	switch name {
	case EngineClamd:
		return e.Clamd
	case EngineRspamd:
		return e.Rspamd
	case EngineSpamd:
		return e.Spamd
	}
	// An engine without settings of its own (sender authentication,
	// whose checks have their own timeouts) counts whole and fails
	// closed.
	return EngineSettings{Timeout: duration.Duration{Duration: defaultEngineTimeout}, OnError: ActionTempfail, ScoreWeight: 1}
}

// defaultEngineTimeout bounds a call to an engine without settings.
const defaultEngineTimeout = 30 * time.Second

func (e Engines) check(bad func(key, format string, args ...any)) {
	for _, x := range []struct {
		name string
		s    EngineSettings
	}{{EngineClamd, e.Clamd}, {EngineRspamd, e.Rspamd}, {EngineSpamd, e.Spamd}} {
		key := "engines." + x.name + "."
		switch d := x.s.Timeout.Duration; {
		case d <= 0:
			bad(key+"timeout", "must be a positive duration, got %s", d)
		case d > MaxTimeout:
			bad(key+"timeout", "must be at most %s, got %s", MaxTimeout, d)
		}
		if c := x.s.MaxConnections; c < 1 || c > MaxEngineConnections {
			bad(key+"max_connections", "must be 1 to %d, got %d", MaxEngineConnections, c)
		}
		oneOf(bad, key+"on_error", x.s.OnError, ActionTempfail, ActionQuarantine, actionAccept)
		if n := x.s.MaxSize; n < 0 || n > MaxEngineSize {
			bad(key+"max_size", "must be 0 (no limit) to %d bytes, got %d", MaxEngineSize, n)
		}
		if w := x.s.ScoreWeight; math.IsNaN(w) || w < 0 || w > MaxScoreWeight {
			bad(key+"score_weight", "must be 0 to %d, got %g", MaxScoreWeight, w)
		}
	}
}

// actionAccept is on_error's "deliver, marked": not an Action a verdict
// ever carries.
const actionAccept Action = "accept"

// engineFailure is how a failed engine is named in the header
// X-Mxgate-Engine-Failed: "clamd (timeout)".
func engineFailure(name, kind string) string { return fmt.Sprintf("%s (%s)", name, kind) }
