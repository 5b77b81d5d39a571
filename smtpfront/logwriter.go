package smtpfront

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

const (
	// batchWindow is how long records gather before one store transaction
	// (one fsync) writes them all: a few commits a second instead of one
	// per message, and no wake-up of another goroutine per message.
	batchWindow = 100 * time.Millisecond
	// batchKick writes at once when this many are pending.
	batchKick = 512
	// pendingMax bounds memory when the store is slow: sessions then wait.
	pendingMax = 8192
)

// logWriter takes message-log writes off the reply path and groups them.
// The structured log line is already written when a record gets here, so a
// record lost in a crash is still in the node's log.
type logWriter struct {
	store   msglog.Store
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	room    *sync.Cond // signalled when pending shrinks
	pending []msglog.Record
	stopped bool

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func newLogWriter(s msglog.Store, l *slog.Logger, m *metrics) *logWriter {
	w := &logWriter{store: s, log: l, metrics: m, kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	return w
}

func (w *logWriter) start() {
	w.wg.Add(1)
	go w.run()
}

// add queues a record; it waits while the store is far behind rather than
// drop it.
func (w *logWriter) add(r msglog.Record) {
	w.mu.Lock()
	for len(w.pending) >= pendingMax && !w.stopped {
		w.room.Wait()
	}
	w.pending = append(w.pending, r)
	n := len(w.pending)
	w.mu.Unlock()
	if n == batchKick {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// stop writes what is pending and ends the writer.
func (w *logWriter) stop() {
	close(w.done)
	w.wg.Wait()
}

func (w *logWriter) run() {
	defer w.wg.Done()
	t := time.NewTicker(batchWindow)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.kick:
		case <-w.done:
			w.flush()
			w.mu.Lock()
			w.stopped = true
			w.room.Broadcast()
			w.mu.Unlock()
			w.flush()
			return
		}
		w.flush()
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.room.Broadcast()
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.store.Append(ctx, batch...); err != nil {
		w.metrics.logDropped.Add(float64(len(batch)))
		w.log.Error("message log write failed", "records", len(batch), "err", err)
	}
}
