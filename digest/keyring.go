package digest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// newKey is a fresh random signing key created at now.
func newKey(now time.Time) Key {
	id := make([]byte, keyIDLen)
	secret := make([]byte, 32)
	rand.Read(id) // never fails (crypto/rand)
	rand.Read(secret)
	return Key{ID: hex.EncodeToString(id), Secret: secret, Created: now.UTC().Truncate(time.Second)}
}

// NewestFirst sorts keys by creation, newest first (ties by id, so every
// node picks the same signing key).
func NewestFirst(keys []Key) []Key {
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(b.ID, a.ID))
	})
	return keys
}

// signingKeys returns the keys, newest first, creating the first one
// when there is none.
func signingKeys(ctx context.Context, s Store, now time.Time) ([]Key, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read digest keys: %w", err)
	}
	if len(keys) == 0 {
		if keys, err = s.InitKey(ctx, newKey(now)); err != nil {
			return nil, fmt.Errorf("create the first digest key: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("create the first digest key: none stored")
		}
	}
	return NewestFirst(keys), nil
}

// Rotate adds a new signing key; the older ones stay for verifying as
// long as a link they signed can live (lifetime: the quarantine's
// retention), that is until the key that replaced them is older than
// lifetime. It returns the new key's id and the ids dropped.
func Rotate(ctx context.Context, s Store, lifetime time.Duration, now time.Time) (string, []string, error) {
	keys, err := signingKeys(ctx, s, now)
	if err != nil {
		return "", nil, err
	}
	k := newKey(now)
	var drop []string
	// keys[i] signed until keys[i-1] was created.
	for i := 1; i < len(keys); i++ {
		if now.Sub(keys[i-1].Created) > lifetime {
			drop = append(drop, keys[i].ID)
		}
	}
	if err := s.AddKey(ctx, k, drop); err != nil {
		return "", nil, fmt.Errorf("rotate digest key: %w", err)
	}
	return k.ID, drop, nil
}
