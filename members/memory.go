package members

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// memory is the membership of the embedded store: the members live in
// this process only. There is no bbolt membership on purpose: the
// embedded store has one node, so there is nobody to share heartbeats
// with, and a heartbeat is worthless after a restart (its TTL of seconds
// has passed); writing one to disk every TTL/3 would cost an fsync a
// second for nothing. The conformance suite (store/storetest) holds it to
// the Redis backend's behaviour all the same.
type memory struct {
	mu      sync.Mutex
	members map[string]entry
}

type entry struct {
	m       Member
	expires time.Time
}

// NewMemory returns a membership kept in this process (single node,
// embedded store).
func NewMemory() Store {
	return &memory{members: make(map[string]entry)}
}

func (s *memory) Heartbeat(ctx context.Context, m Member, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("heartbeat %q: %w", m.ID, err)
	}
	if err := check(m, ttl); err != nil {
		return fmt.Errorf("heartbeat %q: %w", m.ID, err)
	}
	now := time.Now()
	m.Seen = now
	s.mu.Lock()
	defer s.mu.Unlock()
	// Dropped here rather than by a timer: no goroutine to own.
	for id, e := range s.members {
		if !now.Before(e.expires) {
			delete(s.members, id)
		}
	}
	s.members[m.ID] = entry{m: m, expires: now.Add(ttl)}
	return nil
}

func (s *memory) Live(ctx context.Context) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("live members: %w", err)
	}
	now := time.Now()
	s.mu.Lock()
	out := make([]Member, 0, len(s.members))
	for _, e := range s.members {
		if now.Before(e.expires) {
			out = append(out, e.m)
		}
	}
	s.mu.Unlock()
	sortByID(out)
	return out, nil
}
