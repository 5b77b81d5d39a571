// Package sessions is the shared memory of the web console's logouts: the
// sessions revoked before they expire, kept in the gateway's store (both
// backends) so that a logout holds on every node of the cluster and
// across restarts, although the session cookie itself is stateless.
package sessions

import (
	"context"
	"errors"
	"time"
)

// MaxID bounds a session id.
const MaxID = 64

// Store holds the revoked sessions.
type Store interface {
	// Revoke records session id as revoked until until (the session's
	// own expiry: past it the cookie is refused anyway, and the record
	// goes). Revoking a revoked id again is fine; an until already past
	// records nothing.
	Revoke(ctx context.Context, id string, until time.Time) error
	// Revoked reports whether id is revoked now.
	Revoked(ctx context.Context, id string) (bool, error)
}

func checkID(id string) error {
	if id == "" || len(id) > MaxID {
		return errors.New("a session id has 1 to 64 bytes")
	}
	return nil
}
