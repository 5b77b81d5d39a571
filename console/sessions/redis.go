package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// keyRevoked + id is a revoked session, expiring with it (PXAT, on the
// Redis server's clock).
const keyRevoked = kv.Prefix + "console:revoked:"

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis keeps the revoked sessions in Redis, one key each.
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

func (s *redisStore) Revoke(ctx context.Context, id string, until time.Time) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("revoke console session: %w", err)
	}
	if !time.Now().Before(until) {
		return nil
	}
	// Rounded up to the millisecond: go-redis sends a time without
	// milliseconds as EXAT, with them as PXAT, and either way the key
	// must not go before the session does.
	until = until.Truncate(time.Millisecond).Add(time.Millisecond)
	if err := s.c.SetArgs(ctx, keyRevoked+id, "1", redis.SetArgs{ExpireAt: until}).Err(); err != nil {
		return fmt.Errorf("revoke console session: %w", err)
	}
	return nil
}

func (s *redisStore) Revoked(ctx context.Context, id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, fmt.Errorf("read console session revocation: %w", err)
	}
	n, err := s.c.Exists(ctx, keyRevoked+id).Result()
	if err != nil {
		return false, fmt.Errorf("read console session revocation: %w", err)
	}
	return n > 0, nil
}
