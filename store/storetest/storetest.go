// Package storetest is the conformance suite every store backend passes. It
// uses the backend only through the quarantine, lists and msglog
// interfaces, so the embedded and the Redis backend are held to the same
// behaviour.
package storetest

import (
	"testing"

	"github.com/mxgate/mxgate/store"
)

// Run runs the suite. open must return a new, empty backend on each call
// and close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) *store.Backend) {
	t.Run("Quarantine", func(t *testing.T) { runQuarantine(t, open) })
	t.Run("Lists", func(t *testing.T) { runLists(t, open) })
	t.Run("Log", func(t *testing.T) { runLog(t, open) })
}
