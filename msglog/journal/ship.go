package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

// ship writes what is on disk to the store every ShipInterval, in batches,
// until Close; while the store fails it retries with backoff. On Close it
// writes what the store takes and ends at the first failure.
func (j *Journal) ship() {
	defer close(j.shipped)
	tick := time.NewTicker(j.o.ShipInterval)
	defer tick.Stop()
	var (
		failures int
		since    time.Time // the first failure of this outage
		reminded time.Time
	)
	for {
		stopping := false
		select {
		case <-tick.C:
		case <-j.stopping:
			stopping = true
		}
		for {
			n, err := j.shipBatch()
			if err == nil {
				if failures > 0 {
					j.log.Info("message log: the store takes records again; the journal is being caught up",
						"failed_writes", failures, "outage", time.Since(since).Round(time.Millisecond).String())
					failures = 0
				}
				if n == 0 {
					break
				}
				continue
			}
			j.m.storeErrors.Inc()
			failures++
			if failures == 1 {
				since, reminded = time.Now(), time.Now()
				j.log.Warn("message log: records not written to the store; they stay in the journal and are retried", "err", err)
			} else if time.Since(reminded) >= remindEvery {
				reminded = time.Now()
				j.mu.Lock()
				used := j.used
				j.mu.Unlock()
				j.log.Warn("message log: the store still does not take records", "for", time.Since(since).Round(time.Second).String(),
					"journal_bytes", used, "journal_max", j.o.MaxBytes, "err", err)
			}
			if stopping || j.runCtx.Err() != nil {
				return
			}
			j.drops.maybeFlush()
			t := time.NewTimer(backoff(failures))
			select {
			case <-t.C:
			case <-j.stopping:
				// One more try, then the rest waits for the next start.
				stopping = true
			}
			t.Stop()
		}
		j.drops.maybeFlush()
		if stopping {
			return
		}
	}
}

// batch is what one read of the journal found: records for the store, the
// position after them, and damage to count once they are confirmed.
type batch struct {
	seg     *segment
	recs    []msglog.Record
	next    int64
	corrupt int // damaged regions skipped
	invalid int // whole entries whose record cannot be stored
}

// shipBatch writes the next batch to the store and advances past it. It
// returns how many records it wrote, 0 when there is nothing to write.
func (j *Journal) shipBatch() (int, error) {
	for {
		j.mu.Lock()
		if len(j.segs) == 0 {
			j.mu.Unlock()
			return 0, nil
		}
		seg := j.segs[0]
		limit, sealed := seg.end, seg.sealed
		j.mu.Unlock()
		if j.shipOff >= limit {
			if !sealed {
				return 0, nil
			}
			j.remove(seg)
			continue
		}
		b, err := j.read(seg, j.shipOff, limit)
		if err != nil {
			return 0, err
		}
		if len(b.recs) > 0 {
			ctx, cancel := context.WithTimeout(j.runCtx, storeTimeout)
			err := j.o.Store.Append(ctx, b.recs...)
			cancel()
			if err != nil {
				return 0, err
			}
			j.m.stored.Add(float64(len(b.recs)))
			if seg.old {
				j.m.replayed.Add(float64(len(b.recs)))
			}
		}
		if b.corrupt > 0 {
			j.m.dropped.WithLabelValues(ReasonCorrupt).Add(float64(b.corrupt))
			j.log.Warn("message log journal: skipped a damaged or torn region (a crash during a write, or a bad disk)",
				"file", seg.path, "offset", j.shipOff, "bytes", b.next-j.shipOff)
		}
		if b.invalid > 0 {
			j.m.dropped.WithLabelValues(ReasonInvalid).Add(float64(b.invalid))
			j.log.Warn("message log journal: skipped entries that hold no valid record", "file", seg.path, "entries", b.invalid)
		}
		j.shipOff = b.next
		j.writeCheckpoint(seg.seq, b.next)
		if len(b.recs) > 0 {
			return len(b.recs), nil
		}
	}
}

// read decodes entries of seg from off up to limit: at most batchRecords
// records or batchBytes. Damage ends the batch: when it is the first thing
// read, the batch skips to limit (a torn tail, or a region whose lengths
// can no longer be trusted) and counts it; otherwise the batch ends before
// it, and the next read meets it first.
func (j *Journal) read(seg *segment, off, limit int64) (batch, error) {
	b := batch{seg: seg, next: off}
	if seg.r == nil {
		f, err := os.Open(seg.path)
		if errors.Is(err, os.ErrNotExist) {
			b.corrupt, b.next = 1, limit // deleted behind our back
			return b, nil
		}
		if err != nil {
			return b, fmt.Errorf("read message log journal: %w", err)
		}
		seg.r = f
		var magic [headerSize]byte
		if _, err := seg.r.ReadAt(magic[:], 0); err != nil || string(magic[:]) != segmentMagic {
			b.corrupt, b.next = 1, limit
			return b, nil
		}
	}
	br := bufio.NewReaderSize(io.NewSectionReader(seg.r, off, limit-off), 64<<10)
	var buf []byte
	var bytes int64
	for len(b.recs) < batchRecords && bytes < batchBytes {
		payload, err := readEntry(br, buf)
		switch {
		case err == io.EOF:
			return b, nil
		case err != nil:
			// Torn, damaged, or unreadable (an I/O error): past this
			// point no length can be trusted.
			if len(b.recs) == 0 && b.invalid == 0 {
				b.corrupt, b.next = 1, limit
			}
			return b, nil
		}
		buf = payload
		size := int64(entryHeader + len(payload))
		b.next += size
		bytes += size
		r, err := decodeRecord(payload)
		if err != nil {
			b.invalid++
			continue
		}
		b.recs = append(b.recs, r)
	}
	return b, nil
}

// remove deletes a segment the store has all of.
func (j *Journal) remove(seg *segment) {
	if seg.r != nil {
		seg.r.Close()
		seg.r = nil
	}
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("message log journal: cannot delete a shipped segment", "file", seg.path, "err", err)
	}
	j.mu.Lock()
	j.segs = j.segs[1:]
	j.used -= seg.end
	j.m.bytes.Set(float64(j.used))
	j.mu.Unlock()
	j.shipOff = headerSize
}

// The checkpoint is the shipper's position: segment, offset and a CRC-32C
// of both. It is written in place without a sync: it only saves replaying
// what the store already has (a replay replaces, never duplicates), so an
// old or damaged one costs time, never records.
const checkpointSize = 20

func (j *Journal) writeCheckpoint(seq uint64, off int64) {
	var b [checkpointSize]byte
	binary.LittleEndian.PutUint64(b[0:8], seq)
	binary.LittleEndian.PutUint64(b[8:16], uint64(off))
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	if _, err := j.cp.WriteAt(b[:], 0); err != nil {
		j.log.Debug("message log journal: checkpoint not written", "err", err)
	}
}

func readCheckpoint(f *os.File) (seq uint64, off int64, ok bool) {
	var b [checkpointSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, 0, false
	}
	off = int64(binary.LittleEndian.Uint64(b[8:16]))
	return binary.LittleEndian.Uint64(b[0:8]), off, off >= 0
}

// dropLog logs dropped records: the first of a series at once, then one
// summary at most every dropLogEvery, so a long outage with a full journal
// does not add a line per message (each message has its own line anyway).
type dropLog struct {
	log *slog.Logger

	mu     sync.Mutex
	last   time.Time
	counts map[string]int
	lastID string
	cause  error
}

const dropLogEvery = 10 * time.Second

func (d *dropLog) note(reason, id string, n int, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts == nil {
		d.counts = map[string]int{}
	}
	d.counts[reason] += n
	d.lastID, d.cause = id, cause
	if time.Since(d.last) >= dropLogEvery {
		d.emitLocked()
	}
}

func (d *dropLog) maybeFlush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.counts) > 0 && time.Since(d.last) >= dropLogEvery {
		d.emitLocked()
	}
}

func (d *dropLog) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.counts) > 0 {
		d.emitLocked()
	}
}

func (d *dropLog) emitLocked() {
	attrs := []any{"last_id", d.lastID, "err", d.cause}
	for r, n := range d.counts {
		attrs = append(attrs, r, n)
	}
	d.log.Error("message log: records could not be kept (see mxgate_msglog_dropped_total)", attrs...)
	d.last = time.Now()
	clear(d.counts)
}
