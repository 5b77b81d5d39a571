package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// keyNonce + nonce is a claimed nonce, PX its ttl: a key of the shared
// store like every other (kv.Prefix). The nonce store is peer's own, as
// each store is its package's: only the peer API's replay guard uses it,
// and on the embedded store it has no counterpart (see replayGuard).
const keyNonce = kv.Prefix + "peer:nonce:"

type redisNonces struct {
	c redis.UniversalClient
}

// NewRedisNonces keeps nonces in Redis: one key per nonce, set with NX and
// expiring by itself (PX, on the Redis server's clock).
func NewRedisNonces(c redis.UniversalClient) NonceStore {
	return &redisNonces{c: c}
}

func (s *redisNonces) Claim(ctx context.Context, nonce string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		ttl = time.Millisecond // PX counts whole milliseconds, and 0 is refused
	}
	// A token of this claim as the value: go-redis retries a command whose
	// reply was lost, and the retry then finds the key; if it holds this
	// very token, the key is this claim's own.
	var tb [16]byte
	rand.Read(tb[:]) // never fails (crypto/rand, Go 1.24+)
	token := hex.EncodeToString(tb[:])
	key := keyNonce + nonce
	ok, err := s.c.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claim nonce: %w", err)
	}
	if ok {
		return true, nil
	}
	v, err := s.c.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// Expired in between: it was claimed before, all the same.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("claim nonce: %w", err)
	}
	return v == token, nil
}
