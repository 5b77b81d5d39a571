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
// exists, checking every minute until ctx ends, and mails it when mail
// says to (nil: never). Days are closed settle after midnight. Exactly
// once across a failover: a new master that builds the same day loses
// Create's race and keeps the stored report, and the mail is claimed in
// the store before it is sent. A failed send is tried again, less and
// less often, until the next day's report is due. now is the clock
// (time.Now; injectable for tests); a nil logger discards.
func RunScheduler(ctx context.Context, s Store, log msglog.Store, node string, isMaster func() bool, mail func() MailSettings, now func() time.Time, logger *slog.Logger) {
	runScheduler(ctx, newScheduler(s, log, node, isMaster, mail, now, logger), checkEvery)
}

// scheduler is RunScheduler's state between its runs.
type scheduler struct {
	s        Store
	log      msglog.Store
	node     string
	isMaster func() bool
	now      func() time.Time
	logger   *slog.Logger
	mail     *mailer
	done     string // the last day known to have a report: no store read for it again
}

func newScheduler(s Store, log msglog.Store, node string, isMaster func() bool, mail func() MailSettings, now func() time.Time, logger *slog.Logger) *scheduler {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if mail == nil {
		mail = func() MailSettings { return MailSettings{} }
	}
	return &scheduler{s: s, log: log, node: node, isMaster: isMaster, now: now, logger: logger,
		mail: &mailer{s: s, node: node, settings: mail, now: now, logger: logger}}
}

func runScheduler(ctx context.Context, sc *scheduler, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sc.run(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run is one run of the job: yesterday's report written, then mailed.
func (sc *scheduler) run(ctx context.Context) {
	if !sc.isMaster() {
		return
	}
	day := StartOfDay(sc.now().Add(-settle)).AddDate(0, 0, -1)
	d := day.Format(DayFormat)
	if d != sc.done {
		if err := ensure(ctx, sc.s, sc.log, sc.node, day, sc.logger); err != nil {
			if ctx.Err() == nil {
				sc.logger.Warn("daily report not written; retrying in a minute", "day", d, "err", err)
			}
			return
		}
		sc.done = d
	}
	sc.mail.run(ctx, d)
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
