package report

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

const (
	// checkEvery is how often the scheduler looks whether a report is due.
	checkEvery = time.Minute
	// settle is how long after midnight (UTC) a day is left open: the
	// message log is written in batches, and the last ones of the day may
	// still be on their way.
	settle = 5 * time.Minute
)

// RunScheduler makes sure, while isMaster(), that yesterday's (UTC) report
// exists, checking every minute until ctx ends. Days are closed settle
// after midnight. Exactly once across a failover: a new master that builds
// the same day loses Create's race and keeps the stored report. now is the
// clock (time.Now; injectable for tests); a nil logger discards.
func RunScheduler(ctx context.Context, s Store, log msglog.Store, node string, isMaster func() bool, now func() time.Time, logger *slog.Logger) {
	runScheduler(ctx, s, log, node, isMaster, now, logger, checkEvery)
}

func runScheduler(ctx context.Context, s Store, log msglog.Store, node string, isMaster func() bool, now func() time.Time, logger *slog.Logger, every time.Duration) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var done string // the last day known to have a report: no store read for it again
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if isMaster() {
			day := StartOfDay(now().Add(-settle)).AddDate(0, 0, -1)
			if d := day.Format(DayFormat); d != done {
				if err := ensure(ctx, s, log, node, day, logger); err != nil {
					if ctx.Err() != nil {
						return
					}
					logger.Warn("daily report not written; retrying in a minute", "day", d, "err", err)
				} else {
					done = d
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ensure writes the report of day unless the store has it.
func ensure(ctx context.Context, s Store, log msglog.Store, node string, day time.Time, logger *slog.Logger) error {
	d := day.Format(DayFormat)
	_, err := s.Get(ctx, d)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	r, err := Build(ctx, log, day, node)
	if err != nil {
		return err
	}
	created, err := s.Create(ctx, r)
	if err != nil {
		return err
	}
	if created {
		logger.Info("daily report written", "day", d, "messages", r.Total)
	} else {
		logger.Info("daily report already written by another node", "day", d)
	}
	return nil
}
