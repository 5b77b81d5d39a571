package node

import (
	"context"
	"fmt"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
)

// engineMaker makes the client of one outside engine from its address
// (scanner.clamd, ...) and its cluster-wide settings; every client of the
// node shares m.
type engineMaker func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error)

// engineMakers are the clients this build has, by engine name. An engine
// configured without a maker here is refused at Build, never ignored.
//
// Seam for the engine clients: fill in
//
//	scanner.EngineClamd:  clamd.New,
//	scanner.EngineRspamd: rspamd.New,  // and the controller for learning
//	scanner.EngineSpamd:  spamd.New,
func engineMakers() map[string]engineMaker {
	return map[string]engineMaker{}
}

// enginePingInterval is how often the node pings its engines for its
// health report; a failed scan marks an engine down in between.
const enginePingInterval = 10 * time.Second

// buildEngines makes the clients of the engines cfg gives addresses for,
// under policy's settings, in a fixed order (clamd, rspamd, spamd).
func buildEngines(cfg config.Config, policy scanner.Policy, makers map[string]engineMaker, m *engines.Metrics) ([]scanner.Engine, error) {
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
