package scanner

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/mxgate/mxgate/config/duration"
	"github.com/mxgate/mxgate/engines"
)

// Local are the scanner settings each node keeps in its own file, next to
// the Policy under scanner: (config.Scanner): how many scans it runs, how
// long one may take, where its engines are. They never travel in a cluster
// revision. A new node-local setting (an engine's address or timeout) is
// one field here, its default in DefaultLocal and its check in Validate.
type Local struct {
	// Workers is the number of concurrent scans; 0 = number of CPUs.
	Workers int `yaml:"workers" json:"workers"`
	// Queue is the number of scans that may wait for a worker; beyond it
	// a scan is refused with ErrOverloaded (the front end answers 451).
	Queue int `yaml:"queue" json:"queue"`
	// Timeout bounds one message's scan, the wait for a worker and
	// external engines included.
	Timeout duration.Duration `yaml:"timeout" json:"timeout"`
	// Clamd is the ClamAV daemon: tcp://host:port or unix:///path;
	// empty = not used.
	Clamd string `yaml:"clamd" json:"clamd"`
	// Rspamd is Rspamd's normal worker, which scans (POST /checkv2):
	// http://host:port; empty = not used.
	Rspamd string `yaml:"rspamd" json:"rspamd"`
	// RspamdController is Rspamd's controller worker, which learns
	// (learnspam, learnham): http://host:port; empty = no learning.
	RspamdController string `yaml:"rspamd_controller" json:"rspamd_controller"`
	// Spamd is the SpamAssassin daemon: tcp://host:port or unix:///path;
	// empty = not used.
	Spamd string `yaml:"spamd" json:"spamd"`
	// SimulatedDelay is added to every scan, holding its worker like a
	// remote engine would: for benchmarks and tests of a cluster whose
	// scanning is mostly waiting. The caller's context and Timeout cut it
	// short. 0 in production.
	SimulatedDelay duration.Duration `yaml:"simulated_delay" json:"simulated_delay"`
	// DNS is this node's resolver for sender authentication and DNSBLs
	// (policy_auth.go).
	DNS DNSLocal `yaml:"dns,omitempty" json:"dns,omitzero"`
}

// DefaultLocal are the node-local settings of a node file without scanner
// keys.
func DefaultLocal() Local {
	return Local{
		Workers: 0,
		Queue:   64,
		Timeout: duration.Duration{Duration: 60 * time.Second},
	}
}

// Validate reports every problem of l at once: errors.Join of
// *SettingError, each keyed relative to l (workers, timeout); the node file
// names them under scanner. (see Under).
func (l Local) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, settingError(key, format, args...)) }
	switch {
	case l.Workers < 0:
		bad("workers", "must be 0 (number of CPUs) or more, got %d", l.Workers)
	case l.Workers > MaxWorkers:
		bad("workers", "must be at most %d, got %d", MaxWorkers, l.Workers)
	}
	switch {
	case l.Queue < 0:
		bad("queue", "must be 0 or more, got %d", l.Queue)
	case l.Queue > MaxQueue:
		bad("queue", "must be at most %d, got %d", MaxQueue, l.Queue)
	}
	switch d := l.Timeout.Duration; {
	case d <= 0:
		bad("timeout", "must be a positive duration, got %s", d)
	case d > MaxTimeout:
		bad("timeout", "must be at most %s, got %s", MaxTimeout, d)
	}
	engineAddr(bad, "clamd", l.Clamd, "tcp", "unix")
	engineAddr(bad, "rspamd", l.Rspamd, "http")
	engineAddr(bad, "rspamd_controller", l.RspamdController, "http")
	if l.RspamdController != "" && l.Rspamd == "" {
		// Learning without scanning would teach an Rspamd nobody asks.
		bad("rspamd_controller", "needs scanner.rspamd (the normal worker) as well")
	}
	engineAddr(bad, "spamd", l.Spamd, "tcp", "unix")
	if d := l.SimulatedDelay.Duration; d < 0 || d > MaxSimulatedDelay {
		bad("simulated_delay", "must be 0 to 1m, got %s", d)
	}
	errs = append(errs, l.DNS.problems()...)
	return errors.Join(errs...)
}

// engineAddr checks the address of an outside engine as its client will
// read it (engines.ParseAddr), port range included.
func engineAddr(bad func(key, format string, args ...any), key, v string, schemes ...string) {
	if v == "" {
		return
	}
	a, err := engines.ParseAddr(v, schemes...)
	if err != nil {
		bad(key, "%v", err)
		return
	}
	if a.Network == "tcp" {
		if _, port, _ := net.SplitHostPort(a.Address); !validPort(port) {
			bad(key, "%q: port must be 1 to 65535", v)
		}
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}
