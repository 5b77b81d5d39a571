package scanner

import (
	"math"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The engines' defaults fail closed and follow the daemons' own limits.
func TestEngineDefaults(t *testing.T) {
	e := DefaultPolicy().Engines
	for _, x := range []struct {
		name    string
		timeout time.Duration
		conns   int
		maxSize int64
	}{{EngineClamd, 30 * time.Second, 10, 25 << 20}, {EngineRspamd, 20 * time.Second, 32, 0}, {EngineSpamd, 30 * time.Second, 5, 500_000}} {
		s := e.Settings(x.name)
		if s.Timeout.Duration != x.timeout || s.MaxConnections != x.conns || s.OnError != ActionTempfail || s.MaxSize != x.maxSize || s.ScoreWeight != 1 {
			t.Errorf("%s defaults: %+v", x.name, s)
		}
	}
	// Sender authentication has no settings here: it counts whole and
	// fails closed.
	if s := e.Settings("auth"); s.ScoreWeight != 1 || s.OnError != ActionTempfail || s.Timeout.Duration != 30*time.Second {
		t.Errorf("an engine without settings gets %+v, want weight 1, on_error tempfail, timeout 30s", s)
	}
}

func TestEngineSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(e *Engines)
		want []string
	}{
		{"defaults", func(e *Engines) {}, nil},
		{"every on_error", func(e *Engines) {
			e.Clamd.OnError, e.Rspamd.OnError, e.Spamd.OnError = ActionQuarantine, actionAccept, ActionTempfail
		}, nil},
		{"at the bounds", func(e *Engines) {
			e.Clamd.Timeout.Duration, e.Clamd.MaxConnections, e.Clamd.MaxSize, e.Clamd.ScoreWeight = MaxTimeout, MaxEngineConnections, MaxEngineSize, MaxScoreWeight
			e.Spamd.MaxConnections, e.Spamd.MaxSize, e.Spamd.ScoreWeight = 1, 0, 0
		}, nil},
		{"past the bounds", func(e *Engines) {
			e.Clamd.Timeout.Duration, e.Clamd.MaxConnections, e.Clamd.MaxSize, e.Clamd.ScoreWeight = MaxTimeout+1, MaxEngineConnections+1, MaxEngineSize+1, MaxScoreWeight+1
		}, []string{
			"engines.clamd.timeout: must be at most 1h0m0s, got 1h0m0.000000001s",
			"engines.clamd.max_connections: must be 1 to 1024, got 1025",
			"engines.clamd.max_size: must be 0 (no limit) to 1073741824 bytes, got 1073741825",
			"engines.clamd.score_weight: must be 0 to 100, got 101",
		}},
		{"zero and negative", func(e *Engines) {
			e.Rspamd.Timeout.Duration, e.Rspamd.MaxConnections, e.Rspamd.MaxSize, e.Rspamd.ScoreWeight = 0, 0, -1, math.NaN()
			e.Spamd.ScoreWeight = -0.5
		}, []string{
			"engines.rspamd.timeout: must be a positive duration, got 0s",
			"engines.rspamd.max_connections: must be 1 to 1024, got 0",
			"engines.rspamd.max_size: must be 0 (no limit) to 1073741824 bytes, got -1",
			"engines.rspamd.score_weight: must be 0 to 100, got NaN",
			"engines.spamd.score_weight: must be 0 to 100, got -0.5",
		}},
		{"on_error", func(e *Engines) { e.Clamd.OnError, e.Spamd.OnError = ActionDeliver, ActionReject }, []string{
			`engines.clamd.on_error: "deliver" is not one of tempfail, quarantine, accept`,
			`engines.spamd.on_error: "reject" is not one of tempfail, quarantine, accept`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.mod(&p.Engines)
			checkProblems(t, p.Validate(), tt.want)
		})
	}
}

// A file that sets one engine key keeps the defaults of the others.
func TestEngineSettingsPartialYAML(t *testing.T) {
	p := DefaultPolicy()
	if err := yaml.Unmarshal([]byte("engines:\n  clamd: {on_error: accept}\n  spamd: {max_size: 1000}\n"), &p); err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy().Engines
	want.Clamd.OnError, want.Spamd.MaxSize = actionAccept, 1000
	if p.Engines != want {
		t.Errorf("got %+v\nwant %+v", p.Engines, want)
	}
}
