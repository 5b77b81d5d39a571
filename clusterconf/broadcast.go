package clusterconf

import (
	"context"
	"sync"
)

// broadcast hands announcements to every subscriber in this process. A
// subscriber that has not taken the previous number gets the newer one in
// its place: readers reload Current anyway, so only the latest matters.
type broadcast struct {
	mu   sync.Mutex
	subs map[chan int64]struct{}
}

func newBroadcast() broadcast {
	return broadcast{subs: make(map[chan int64]struct{})}
}

func (b *broadcast) send(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		offer(ch, n)
	}
}

// offer puts n in ch (capacity 1) without blocking, replacing a number the
// reader has not taken yet.
func offer(ch chan int64, n int64) {
	for {
		select {
		case ch <- n:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// subscribe returns a channel that gets every announcement until ctx ends;
// it is closed then. The goroutine that closes it is owned by ctx.
func (b *broadcast) subscribe(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
