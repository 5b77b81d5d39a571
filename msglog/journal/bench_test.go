package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend is what a session's reply waits for: its record encoded,
// written and fdatasync'd, with sessions finishing together sharing one
// sync. ns/op is per record across all sessions; latency/op is what one
// session waits.
func BenchmarkAppend(b *testing.B) {
	for _, sessions := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			db := boltLog(b)
			j, err := Open(Options{Dir: b.TempDir(), Store: db, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close(context.Background())
			var next, waited atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range sessions {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						r := record(int(i % 100000))
						r.ID = fmt.Sprintf("B%09d", i)
						start := time.Now()
						if err := j.Append(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
						waited.Add(int64(time.Since(start)))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(waited.Load())/float64(b.N)/1e3, "µs-wait/op")
		})
	}
}

// BenchmarkEntryRoundTrip is the CPU the journal adds per record besides
// the sync: encode and frame it, then read, check and decode it for the
// store.
func BenchmarkEntryRoundTrip(b *testing.B) {
	r := record(1)
	var buf []byte
	rd := bytes.NewReader(nil)
	br := bufio.NewReader(rd)
	for b.Loop() {
		p, _, err := encodeRecord(r)
		if err != nil {
			b.Fatal(err)
		}
		frame := appendEntry(buf[:0], p)
		rd.Reset(frame)
		br.Reset(rd)
		payload, err := readEntry(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeRecord(payload); err != nil {
			b.Fatal(err)
		}
		buf = frame
	}
}
