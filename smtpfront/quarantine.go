package smtpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/mxgate/mxgate/quarantine"
)

// putAttempts bounds the quarantine writes for one message. With the
// waits between them (putRetryWait: 0.2 s, then 0.8 s) and go-redis's own
// retries inside each write, a write whose answer was lost is tried for
// about 3 s before the 451: long enough for a connection reset or a quick
// failover, short enough not to hold sessions long (the client's retry is
// safe anyway, see putHeld).
const putAttempts = 3

func putRetryWait(attempt int) time.Duration { return 200 * time.Millisecond << (2 * (attempt - 1)) }

// putHeld stores a quarantined message so that the store and the reply
// agree, and returns the id the message is held under.
//
// A failed write does not say that nothing was written: Redis may have run
// the script and only its reply was lost. Every write is idempotent (the
// same id, the same digest of envelope and message), so a retry that
// succeeds means the message is held, whether by this attempt or an
// earlier one, and the client gets 250. When the store stays away the
// client gets 451, and the item may exist all the same; its retry (the
// same message for the same envelope, under a new id) then finds that item
// through the digest and gets "250 queued as <first id>", so no second
// copy is made. The same holds for a client that lost our 250 and sent the
// message again.
// unreachable reports a store that took no connection on the last try: a
// retry a moment later would meet the same (a stopped Redis), so the
// client gets its 451 as soon as without the retries.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func putHeld(ctx context.Context, q quarantine.Store, it quarantine.Item, raw []byte, log *slog.Logger) (string, error) {
	for attempt := 1; ; attempt++ {
		err := q.Put(ctx, it, raw)
		var dup *quarantine.DuplicateError
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("quarantine write confirmed on retry", "id", it.ID, "attempts", attempt)
			}
			return it.ID, nil
		case errors.As(err, &dup):
			log.Info("message held in quarantine already: the client sent it again", "id", it.ID, "held_as", dup.ID)
			return dup.ID, nil
		case errors.Is(err, quarantine.ErrExists) || attempt == putAttempts || ctx.Err() != nil || unreachable(err):
			return "", err
		}
		log.Warn("quarantine write failed, trying again", "id", it.ID, "attempt", attempt, "err", err)
		t := time.NewTimer(putRetryWait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (then %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
