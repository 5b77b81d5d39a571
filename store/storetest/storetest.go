// Package storetest is the conformance suite every store backend passes:
// one suite per store (quarantine, lists, message log, cluster
// configuration, reports, membership, digest, console sessions), each using the store only through
// its package's Store interface, so the embedded and the Redis backend are
// held to the same behaviour.
package storetest

import (
	"testing"
	"time"

	"github.com/mxgate/mxgate/store"
)

// Env is one backend under test, with what the suites need around it.
type Env struct {
	*store.Backend
	// Node returns another handle on the data of Backend, as a second
	// node of the cluster holds it (a new Redis client), closed when the
	// test ends. On the embedded store, which one process holds, it
	// returns Backend itself.
	Node func(t *testing.T) *store.Backend
	// Outage, when not nil, stops the server behind Backend (and Node's),
	// waits down, and starts it again with its data, for the tests of
	// recovery after an outage. Nil skips them (the embedded store, a
	// Redis Cluster).
	Outage func(t *testing.T, down time.Duration)
}

// Run runs every store's suite. open must return a new, empty backend on
// each call and close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) Env) {
	t.Run("Quarantine", func(t *testing.T) { runQuarantine(t, open) })
	t.Run("Lists", func(t *testing.T) { runLists(t, open) })
	t.Run("Log", func(t *testing.T) { runLog(t, open) })
	t.Run("Config", func(t *testing.T) { runConfig(t, open) })
	t.Run("Reports", func(t *testing.T) { runReports(t, open) })
	t.Run("Members", func(t *testing.T) { runMembers(t, open) })
	t.Run("Digest", func(t *testing.T) { runDigestStore(t, open) })
	t.Run("Sessions", func(t *testing.T) { runSessions(t, open) })
}
