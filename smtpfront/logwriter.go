package smtpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/msglog/journal"
)

const (
	// journalWait bounds how long a reply waits for its record to reach
	// the disk: a disk that hangs must not hang SMTP. The record is still
	// written when the wait is over.
	journalWait = 10 * time.Second
	// journalStop bounds shipping what is left at a stop; what the store
	// does not take by then is replayed at the next start.
	journalStop = 3 * time.Second
	// journalDirName is the journal's directory inside the spool directory
	// when Options.LogJournalDir is empty.
	journalDirName = "msglog-journal"
)

// logWriter keeps the message-log records of finished transactions in the
// node's journal (msglog/journal) before the reply is sent; the journal
// writes them to the store in batches and keeps them across store outages
// and restarts.
type logWriter struct {
	o   journal.Options
	ctx context.Context // the server's: cancelled when the drain time is over
	log *slog.Logger
	j   *journal.Journal
}

func newLogWriter(ctx context.Context, o Options, m *journal.Metrics) (*logWriter, error) {
	dir := o.LogJournalDir
	if dir == "" {
		if o.SpoolDir == "" {
			return nil, errors.New("smtpfront: LogJournalDir (or SpoolDir) is required for the message log journal")
		}
		dir = filepath.Join(o.SpoolDir, journalDirName)
	}
	if o.LogJournalMax != 0 && (o.LogJournalMax < journal.MinMaxBytes || o.LogJournalMax > journal.MaxMaxBytes) {
		return nil, fmt.Errorf("smtpfront: LogJournalMax %d outside %d..%d", o.LogJournalMax, journal.MinMaxBytes, int64(journal.MaxMaxBytes))
	}
	jo := journal.Options{Dir: dir, MaxBytes: o.LogJournalMax, SyncInterval: o.LogJournalSync, Store: o.Log, Logger: o.Logger, Metrics: m}
	return &logWriter{o: jo, ctx: ctx, log: o.Logger}, nil
}

// start opens the journal and replays what an earlier run left in it.
func (w *logWriter) start() error {
	if w.j != nil {
		return nil
	}
	j, err := journal.Open(w.o)
	if err != nil {
		return fmt.Errorf("message log: %w", err)
	}
	w.j = j
	return nil
}

// add keeps r and returns once it is on disk, so the reply that follows
// never runs ahead of its record. A record that cannot be kept is counted
// and logged by the journal; the reply is not changed for it (the message
// itself is safe, only its log entry is not).
func (w *logWriter) add(r msglog.Record) {
	if w.j == nil {
		w.log.Error("message log: record before the front end started", "id", r.ID)
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, journalWait)
	defer cancel()
	err := w.j.Append(ctx, r)
	if err != nil && !errors.Is(err, journal.ErrDropped) {
		w.log.Warn("message log: the journal's disk is slow; reply sent before the record was on disk", "id", r.ID, "err", err)
	}
}

// stop writes what is pending, ships what the store takes within
// journalStop and leaves the rest on disk for the next start.
func (w *logWriter) stop() {
	if w.j == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalStop)
	defer cancel()
	w.j.Close(ctx) // logs what it leaves; a late add counts as dropped
}
