package digest

import (
	"context"
	"time"
)

// Retries of a run with failures, doubling from the first to the last;
// the store's claims keep every retry from sending a digest twice.
const (
	firstRetry = time.Minute
	maxRetry   = time.Hour
	checkEvery = time.Minute
)

// RunScheduler sends the day's digests at Settings.At (UTC) while
// isMaster(), checking every minute until ctx ends. Once per recipient
// and day across failovers and two nodes that both think they are
// master: the store's claim decides (see Digester.Send).
func RunScheduler(ctx context.Context, d *Digester, isMaster func() bool) {
	runScheduler(ctx, &scheduler{d: d, isMaster: isMaster}, checkEvery)
}

type scheduler struct {
	d        *Digester
	isMaster func() bool
	done     string    // the last day whose run ended without failures
	next     time.Time // no retry before
	wait     time.Duration
}

func runScheduler(ctx context.Context, sc *scheduler, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sc.run(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run is one check: the day's digests sent when they are due.
func (sc *scheduler) run(ctx context.Context) {
	set := sc.d.Settings()
	if !set.Enabled || !sc.isMaster() {
		return
	}
	now := sc.d.now()
	day := now.Format(DayFormat)
	midnight, _ := time.Parse(DayFormat, day)
	if sc.done == day || now.Before(midnight.Add(set.At)) || now.Before(sc.next) {
		return
	}
	out, err := sc.d.Send(ctx, "")
	failed := 0
	for _, o := range out {
		if o.Result == Failed {
			failed++
		}
	}
	if err == nil && failed == 0 {
		sc.done, sc.wait, sc.next = day, 0, time.Time{}
		sc.d.log().Info("daily digests done", "day", day, "recipients", len(out))
		return
	}
	if ctx.Err() != nil {
		return
	}
	sc.wait = min(max(2*sc.wait, firstRetry), maxRetry)
	sc.next = now.Add(sc.wait)
	sc.d.log().Warn("daily digests: some not sent; retrying", "day", day, "failed", failed, "err", err, "retry_in", sc.wait)
}
