// Package journal keeps message-log records on the node's disk from the
// moment a session finishes until the store has confirmed them, so that
// neither a store outage nor a crash loses the one record per message the
// message log promises.
//
// Append waits until its record is fsync'd: records of sessions finishing
// at the same time share one write and one fdatasync (group commit). With
// a SyncInterval, Append waits only for the write (the kernel has the
// record: a crash of the process loses nothing) and the journal is
// fdatasync'd in the background at that interval (a power loss may lose
// that much). A
// shipper goroutine reads what is on disk, appends it to the store in
// batches, retries with backoff while the store fails, and deletes a
// segment file once the store confirmed all of it. A journal left by a
// crash or by a stop while the store was down is replayed on Open; the
// stores key a record by its time and id, so a replayed record that had
// reached the store before replaces itself instead of counting twice.
//
// The journal is bounded (MaxBytes on disk, a memory bound on records
// waiting for the disk); a record that cannot be kept is counted in
// mxgate_msglog_dropped_total and logged, and Append never waits longer
// than its context allows.
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

const (
	// DefaultMaxBytes is the journal's size on disk unless set: at about
	// 600 bytes a record, some 400 000 records, hours of a busy node's
	// mail while the store is down.
	DefaultMaxBytes = 256 << 20
	// MinMaxBytes and MaxMaxBytes bound Options.MaxBytes.
	MinMaxBytes = 64 << 10
	MaxMaxBytes = 16 << 30

	// MaxSyncInterval bounds Options.SyncInterval: what a power loss may
	// take is a few seconds of records at most.
	MaxSyncInterval = 10 * time.Second

	// DefaultShipInterval is how often the shipper writes what gathered:
	// a few store transactions a second instead of one per message.
	DefaultShipInterval = 100 * time.Millisecond

	// batchRecords and batchBytes bound one store write.
	batchRecords = 512
	batchBytes   = 4 << 20
	// pendingMax bounds the records waiting in memory for the disk.
	pendingMax = 16 << 20
	// segmentMin and segmentMax bound a segment's size before the next
	// one is started (an eighth of MaxBytes in between): a shipped segment
	// is deleted whole, so this is the space that may wait for the next
	// one to fill.
	segmentMin = 16 << 10
	segmentMax = 4 << 20

	// backoffMin and backoffMax space the retries of a failing store.
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	// storeTimeout bounds one store write.
	storeTimeout = 30 * time.Second
	// lockTimeout is how long Open waits for another process's lock on
	// the directory, as the embedded store waits for its file.
	lockTimeout = time.Second
	// remindEvery spaces the log lines of a long outage.
	remindEvery = 30 * time.Second
)

// ErrDropped is returned (wrapped, with the reason) by Append for a record
// that could not be kept; it is already counted and logged.
var ErrDropped = errors.New("message log record dropped")

var (
	errInvalid  = errors.New("invalid record")
	errTooLarge = errors.New("record too large for the journal")
)

// Options configure a journal.
type Options struct {
	// Dir holds the journal; it is created if needed and locked while open.
	Dir string
	// MaxBytes bounds the journal files (0 = DefaultMaxBytes).
	MaxBytes int64
	// Store is where the records go.
	Store msglog.Store
	// ShipInterval is how often records are written to the store
	// (0 = DefaultShipInterval).
	ShipInterval time.Duration
	// SyncInterval is 0 for Append to return once its record is
	// fdatasync'd, or how long a written record may wait for its
	// fdatasync (Append then returns once the record is written).
	SyncInterval time.Duration
	Logger       *slog.Logger
	// Metrics are updated when set (NewMetrics).
	Metrics *Metrics
}

// Journal is an open journal. Append may be called from any goroutine.
type Journal struct {
	o      Options
	log    *slog.Logger
	m      *Metrics
	segMax int64
	lock   *os.File
	cp     *os.File // the shipper's checkpoint

	mu      sync.Mutex
	wake    *sync.Cond // the committer: records pending, or closed
	pend    []byte     // entries waiting for the next group write
	pendIDs []string   // their ids, for the log when the write fails
	group   *group     // the waiters of pend
	closed  bool
	segs    []*segment // oldest first; the active one, if any, is last
	active  *segment   // nil when none could be created; owned by the committer
	used    int64      // bytes of every segment on disk
	nextSeq uint64

	shipOff int64 // the shipper's position in segs[0]; only it touches this

	// With a SyncInterval: dirty is set by a write not yet synced, and
	// syncMu keeps the background sync and seal from using a segment's
	// file at the same time (seal closes it).
	dirty  atomic.Bool
	syncMu sync.Mutex

	drops dropLog

	runCtx    context.Context // the shipper's store writes; cancelled by Close
	cancelRun context.CancelFunc
	stopping  chan struct{} // closed by Close: ship what is left, then end
	committed chan struct{} // the committer ended
	shipped   chan struct{} // the shipper ended
	synced    chan struct{} // the background syncer ended (closed at once without one)
	closeOnce sync.Once
}

// group is the records written by one write and fdatasync.
type group struct {
	done chan struct{}
	err  error
}

// Open locks dir, finds what an earlier run left, starts a new segment and
// the goroutines that write and ship. Close ends them.
func Open(o Options) (*Journal, error) {
	if o.Dir == "" {
		return nil, errors.New("open message log journal: no directory")
	}
	if o.Store == nil {
		return nil, errors.New("open message log journal: no store")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBytes < MinMaxBytes || o.MaxBytes > MaxMaxBytes {
		return nil, fmt.Errorf("open message log journal: size %d outside %d..%d bytes", o.MaxBytes, MinMaxBytes, int64(MaxMaxBytes))
	}
	if o.ShipInterval <= 0 {
		o.ShipInterval = DefaultShipInterval
	}
	if o.SyncInterval < 0 || o.SyncInterval > MaxSyncInterval {
		return nil, fmt.Errorf("open message log journal: sync interval %s outside 0..%s", o.SyncInterval, MaxSyncInterval)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("open message log journal: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		o: o, log: o.Logger, m: o.Metrics, lock: lock,
		segMax:    min(max(o.MaxBytes/8, segmentMin), segmentMax),
		group:     &group{done: make(chan struct{})},
		stopping:  make(chan struct{}),
		committed: make(chan struct{}),
		shipped:   make(chan struct{}),
		synced:    make(chan struct{}),
	}
	j.wake = sync.NewCond(&j.mu)
	j.drops.log = o.Logger
	if err := j.recover(); err != nil {
		j.closeFiles()
		return nil, err
	}
	active, err := createSegment(o.Dir, j.nextSeq)
	if err != nil {
		j.closeFiles()
		return nil, fmt.Errorf("open message log journal: %w", err)
	}
	j.nextSeq++
	j.segs = append(j.segs, active)
	j.active = active
	j.used += active.end
	j.m.bytes.Set(float64(j.used))

	j.runCtx, j.cancelRun = context.WithCancel(context.Background())
	go j.commit()
	go j.ship()
	if o.SyncInterval > 0 {
		go j.syncLoop()
	} else {
		close(j.synced)
	}
	return j, nil
}

// lockDir takes the directory's lock file: two nodes on one data directory
// would interleave their segments.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open message log journal: %w", err)
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			if err == syscall.EWOULDBLOCK {
				return nil, fmt.Errorf("message log journal %s is in use by another mxgate", dir)
			}
			return nil, fmt.Errorf("lock message log journal %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recover lists the segments an earlier run left, drops those the
// checkpoint says the store has, and places the shipper after the last
// record it confirmed.
func (j *Journal) recover() error {
	cp, err := os.OpenFile(filepath.Join(j.o.Dir, "checkpoint"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open message log journal: %w", err)
	}
	j.cp = cp
	cpSeq, cpOff, cpOK := readCheckpoint(cp)

	ents, err := os.ReadDir(j.o.Dir)
	if err != nil {
		return fmt.Errorf("open message log journal: %w", err)
	}
	var maxSeq uint64
	for _, e := range ents {
		seq, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		maxSeq = max(maxSeq, seq)
		path := filepath.Join(j.o.Dir, e.Name())
		if cpOK && seq < cpSeq {
			// Confirmed by the store before the crash, not yet deleted.
			os.Remove(path)
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("open message log journal: %w", err)
		}
		j.segs = append(j.segs, &segment{seq: seq, path: path, end: info.Size(), sealed: true, old: true})
		j.used += info.Size()
	}
	slices.SortFunc(j.segs, func(a, b *segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	j.shipOff = headerSize
	if len(j.segs) > 0 && cpOK && j.segs[0].seq == cpSeq && cpOff > headerSize && cpOff <= j.segs[0].end {
		j.shipOff = cpOff
	}
	if cpOK {
		maxSeq = max(maxSeq, cpSeq)
	}
	j.nextSeq = maxSeq + 1
	if len(j.segs) > 0 {
		j.log.Info("message log journal: replaying what the store did not confirm before the last stop",
			"dir", j.o.Dir, "segments", len(j.segs), "bytes", j.used-j.shipOff+headerSize)
	}
	return nil
}

// Append keeps r: it returns once r is on disk, or with an error wrapping
// ErrDropped when it cannot be kept (counted and logged here). When ctx
// ends first it returns ctx's error, and r is still written.
func (j *Journal) Append(ctx context.Context, r msglog.Record) error {
	payload, trimmed, err := encodeRecord(r)
	switch {
	case errors.Is(err, errTooLarge):
		return j.drop(ReasonTooLarge, r.ID, 1, err)
	case err != nil:
		return j.drop(ReasonInvalid, r.ID, 1, err)
	}
	if trimmed {
		j.m.trimmed.Inc()
	}
	size := int64(entryHeader + len(payload))
	j.mu.Lock()
	switch {
	case j.closed:
		j.mu.Unlock()
		return j.drop(ReasonStopped, r.ID, 1, errors.New("journal closed"))
	case j.used+int64(len(j.pend))+size+headerSize > j.o.MaxBytes:
		// (headerSize: room for the next segment's header, should this
		// write fill the active one.)
		used := j.used
		j.mu.Unlock()
		return j.drop(ReasonFull, r.ID, 1, fmt.Errorf("journal holds %d of %d bytes", used, j.o.MaxBytes))
	case int64(len(j.pend))+size > pendingMax:
		j.mu.Unlock()
		return j.drop(ReasonSlow, r.ID, 1, errors.New("too many records wait for the disk"))
	}
	j.pend = appendEntry(j.pend, payload)
	j.pendIDs = append(j.pendIDs, r.ID)
	g := j.group
	j.wake.Signal()
	j.mu.Unlock()

	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return fmt.Errorf("wait for the message log journal: %w", ctx.Err())
	}
}

// drop counts and logs a record that could not be kept.
func (j *Journal) drop(reason, id string, n int, cause error) error {
	j.m.dropped.WithLabelValues(reason).Add(float64(n))
	j.drops.note(reason, id, n, cause)
	return fmt.Errorf("%w (%s): %w", ErrDropped, reason, cause)
}

// commit writes pending records, one group per write and fdatasync, until
// the journal is closed and nothing is pending. While one group syncs, the
// next gathers.
func (j *Journal) commit() {
	defer close(j.committed)
	var spare []byte
	var spareIDs []string
	for {
		j.mu.Lock()
		for len(j.pend) == 0 && !j.closed {
			j.wake.Wait()
		}
		if len(j.pend) == 0 {
			j.mu.Unlock()
			return
		}
		buf, ids, g := j.pend, j.pendIDs, j.group
		j.pend, j.pendIDs, j.group = spare[:0], spareIDs[:0], &group{done: make(chan struct{})}
		j.mu.Unlock()

		if err := j.writeGroup(buf); err != nil {
			first := ids[0]
			g.err = j.drop(ReasonIOError, first, len(ids), err)
		}
		close(g.done)
		spare, spareIDs = buf, ids
		if cap(spare) > segmentMax {
			spare = nil // a burst's buffer is not kept for ever
		}
	}
}

// writeGroup appends buf to the active segment and syncs it. A failed
// write leaves the segment's end where it was (what was written past it
// is cut, and never read) and the next group goes to a new segment.
func (j *Journal) writeGroup(buf []byte) error {
	seg := j.active
	if seg == nil {
		var err error
		if seg, err = j.startSegment(); err != nil {
			return err
		}
	}
	start := time.Now()
	_, err := seg.w.WriteAt(buf, seg.end)
	if err == nil && j.o.SyncInterval == 0 {
		err = fdatasync(seg.w)
		j.m.sync.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		seg.w.Truncate(seg.end)
		j.seal(seg)
		return fmt.Errorf("write message log journal %s: %w", seg.path, err)
	}
	j.mu.Lock()
	seg.end += int64(len(buf))
	j.used += int64(len(buf))
	j.m.bytes.Set(float64(j.used))
	j.mu.Unlock()
	if j.o.SyncInterval > 0 {
		j.dirty.Store(true)
	}
	if seg.end >= j.segMax {
		if _, err := j.startSegment(); err != nil {
			// The full one stays active; the next group tries again.
			j.log.Warn("message log journal: cannot start a new segment", "err", err)
		}
	}
	return nil
}

// startSegment creates the next segment and makes it the active one,
// sealing the one before.
func (j *Journal) startSegment() (*segment, error) {
	seg, err := createSegment(j.o.Dir, j.nextSeq)
	if err != nil {
		return nil, err
	}
	j.nextSeq++
	if j.active != nil {
		j.seal(j.active)
	}
	j.mu.Lock()
	j.segs = append(j.segs, seg)
	j.active = seg
	j.used += seg.end
	j.m.bytes.Set(float64(j.used))
	j.mu.Unlock()
	return seg, nil
}

// seal ends writing to seg; the shipper deletes it once shipped. With a
// SyncInterval it is synced first: a sealed segment is never dirty.
func (j *Journal) seal(seg *segment) {
	j.mu.Lock()
	seg.sealed = true
	if j.active == seg {
		j.active = nil
	}
	j.mu.Unlock()
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if seg.w != nil {
		if j.o.SyncInterval > 0 {
			j.syncFile(seg)
		}
		seg.w.Close()
		seg.w = nil
	}
}

// syncLoop fdatasyncs the active segment every SyncInterval while writes
// are waiting for it, until the journal stops (Close seals, and so syncs,
// the active segment).
func (j *Journal) syncLoop() {
	defer close(j.synced)
	t := time.NewTicker(j.o.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stopping:
			return
		case <-t.C:
		}
		if !j.dirty.Swap(false) {
			continue
		}
		j.syncMu.Lock()
		j.mu.Lock()
		seg := j.active
		j.mu.Unlock()
		if seg != nil && seg.w != nil {
			j.syncFile(seg)
		}
		j.syncMu.Unlock()
	}
}

// syncFile fdatasyncs seg's file (syncMu held). A failure is logged: the
// records are written and will be shipped, only a power loss could now
// take them, and the next sync tries again.
func (j *Journal) syncFile(seg *segment) {
	start := time.Now()
	if err := fdatasync(seg.w); err != nil {
		j.dirty.Store(true)
		j.log.Warn("message log journal: background sync failed", "file", seg.path, "err", err)
		return
	}
	j.m.sync.Observe(time.Since(start).Seconds())
}

// Close stops taking records, writes those pending, ships what the store
// takes until ctx ends (without retrying a failing store), and leaves the
// rest on disk for the next Open. It returns an error when records are
// left.
func (j *Journal) Close(ctx context.Context) error {
	var err error
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.wake.Broadcast()
		j.mu.Unlock()
		select {
		case <-j.committed:
		case <-ctx.Done():
			// A disk that does not return from a write must not hold up
			// the stop; what it has not synced was not confirmed to
			// anyone, and the files stay for the next start.
			j.cancelRun()
			close(j.stopping)
			j.mu.Lock()
			waiting, g := j.pendIDs, j.group
			j.pend, j.pendIDs, j.group = nil, nil, &group{done: make(chan struct{})}
			j.mu.Unlock()
			if len(waiting) > 0 {
				g.err = j.drop(ReasonStopped, waiting[0], len(waiting), errors.New("the disk did not take them before the stop"))
			}
			close(g.done)
			j.drops.flush()
			err = fmt.Errorf("message log journal: the disk did not finish a write before the stop: %w", ctx.Err())
			j.log.Error("message log journal: the disk did not finish a write before the stop", "dir", j.o.Dir)
			return
		}
		if a := j.active; a != nil {
			j.seal(a)
		}
		close(j.stopping)
		<-j.synced
		select {
		case <-j.shipped:
		case <-ctx.Done():
			j.cancelRun()
			<-j.shipped
		}
		j.cancelRun()
		j.drops.flush()
		j.mu.Lock()
		left, segs := j.used, len(j.segs)
		j.mu.Unlock()
		if segs > 0 {
			err = fmt.Errorf("message log journal: %d bytes in %d files not confirmed by the store, kept in %s for the next start", left, segs, j.o.Dir)
			j.log.Warn("message log journal: records the store did not confirm stay on disk for the next start",
				"dir", j.o.Dir, "bytes", left, "files", segs)
		}
		j.closeFiles()
	})
	return err
}

func (j *Journal) closeFiles() {
	for _, s := range j.segs {
		if s.w != nil {
			s.w.Close()
		}
		if s.r != nil {
			s.r.Close()
		}
	}
	if j.cp != nil {
		j.cp.Close()
	}
	if j.lock != nil {
		j.lock.Close() // releases the flock
	}
}

// backoff is the wait before retry n (1, 2, ...) of a failing store:
// doubling from backoffMin to backoffMax, with jitter so that several
// nodes do not retry in step.
func backoff(n int) time.Duration {
	d := backoffMin << min(n-1, 10)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}
