package redisstore

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Dial builds the client for rawURL (the forms of Open) without contacting
// Redis, for a node that must start while the store is down: go-redis
// connects on first use and again after every failure.
func Dial(rawURL string) (redis.UniversalClient, error) {
	c, err := newClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis store %s: %w", redact(rawURL), err)
	}
	return c, nil
}

// Redact is rawURL with its password removed, for logs and errors.
func Redact(rawURL string) string { return redact(rawURL) }
