package node

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/engines/clamd"
	"github.com/mxgate/mxgate/engines/rspamd"
	"github.com/mxgate/mxgate/engines/spamd"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/scanner"
)

// engineMaker makes the client of one outside engine from its address
// (scanner.clamd, ...) and its cluster-wide settings; every client of the
// node shares m.
type engineMaker func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error)

// engineMakers are the clients this build has, by engine name. An engine
// configured without a maker here is refused at Build, never ignored.
// local gives what a client needs of the node besides its address (the
// Rspamd controller, for learning).
func engineMakers(local scanner.Local) map[string]engineMaker {
	return map[string]engineMaker{
		scanner.EngineClamd: func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error) {
			return clamd.New(addr, clamd.Options{Timeout: s.Timeout.Duration, MaxConnections: s.MaxConnections, StreamMax: ownLimit(s.MaxSize), Metrics: m})
		},
		scanner.EngineRspamd: func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error) {
			return rspamd.New(addr, rspamd.Options{Timeout: s.Timeout.Duration, MaxConnections: s.MaxConnections, Controller: local.RspamdController, MaxSize: s.MaxSize, Metrics: m})
		},
		scanner.EngineSpamd: func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error) {
			return spamd.New(addr, spamd.Options{Timeout: s.Timeout.Duration, MaxConnections: s.MaxConnections, MaxSize: ownLimit(s.MaxSize), Metrics: m})
		},
	}
}

// ownLimit is max_size for a client: 0 there means no limit of mxgate's
// own (the engine's still holds), where a client reads 0 as its default.
func ownLimit(maxSize int64) int64 {
	if maxSize == 0 {
		return math.MaxInt64
	}
	return maxSize
}

// authEngine is sender authentication under policy, when it is enabled.
func authEngine(cfg config.Config, policy scanner.Policy, log *slog.Logger) (scanner.Engine, error) {
	if !policy.Auth.Enabled {
		return nil, nil
	}
	c, err := mailauth.New(mailauth.Options{
		Policy: policy.Auth, Hostname: cfg.SMTP.Hostname,
		Resolver: mailauth.NewResolver(cfg.Scanner.DNS.Resolver), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("scanner.auth: %w", err)
	}
	return c, nil
}

// enginePingInterval is how often the node pings its engines for its
// health report; a failed scan marks an engine down in between.
const enginePingInterval = 10 * time.Second

// buildEngines makes the clients of the engines cfg gives addresses for,
// under policy's settings, in a fixed order (clamd, rspamd, spamd), and
// sender authentication when the policy enables it.
func buildEngines(cfg config.Config, policy scanner.Policy, makers map[string]engineMaker, m *engines.Metrics, log *slog.Logger) ([]scanner.Engine, error) {
	var out []scanner.Engine
	for _, e := range []struct{ name, addr string }{
		{scanner.EngineClamd, cfg.Scanner.Clamd},
		{scanner.EngineRspamd, cfg.Scanner.Rspamd},
		{scanner.EngineSpamd, cfg.Scanner.Spamd},
	} {
		if e.addr == "" {
			continue
		}
		mk := makers[e.name]
		if mk == nil {
			return nil, fmt.Errorf("scanner.%s: this build has no %s client; leave it empty", e.name, e.name)
		}
		eng, err := mk(e.addr, policy.Engines.Settings(e.name), m)
		if err != nil {
			return nil, fmt.Errorf("scanner.%s: %w", e.name, err)
		}
		out = append(out, eng)
	}
	auth, err := authEngine(cfg, policy, log)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		out = append(out, auth)
	}
	return out, nil
}

// scannerOptions are the pool's options under policy, with engine clients
// made under its settings.
func (n *Node) scannerOptions(policy scanner.Policy) (scanner.Options, error) {
	o := scannerOptions(n.cfg, policy)
	var err error
	if o.Engines, err = n.engines(policy); err != nil {
		return scanner.Options{}, err
	}
	return o, nil
}

// pingEngines pings the pool's engines at once and then every interval
// until ctx ends, so that the node's health follows them.
func pingEngines(ctx context.Context, pool *scanner.Pool, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pool.PingEngines(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
