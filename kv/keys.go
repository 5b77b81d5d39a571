// Package kv is what the two backends of every store share: the key space
// and the plumbing under it. Each store (quarantine, lists, msglog,
// clusterconf, report, members) keeps its own layout in its bolt.go and
// redis.go; this package holds what must be the same for all of them:
//
//   - the Redis key prefix, written only here (Prefix);
//   - the time-ordered keys both backends index by (TimeKey, LenPrefix);
//   - the two range walks over those keys, bbolt's cursor (WalkBack) and
//     Redis's ZRANGE BYLEX (LexRange), which share their bounds so that
//     both backends list the same records in the same order;
//   - the Redis connection: URL forms, dialing, redaction (Dial, Open,
//     Redact);
//   - change notification, the one way readers learn about writes
//     (Broadcast in-process, Subscribe over Redis pub/sub, Follow).
//
// One package rather than a bbolt one and a Redis one, because the pairs
// must agree: a change to how one backend walks or keys its records is a
// change to the other.
package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Prefix starts every Redis key and pub/sub channel of the gateway. The
// braces are a Redis Cluster hash tag: every key lives in one slot, so
// scripts and MULTI/EXEC may touch any set of them, on a cluster as on a
// single server. Stores derive their key names from it
// (kv.Prefix + "q:meta:"); no other file spells it out.
const Prefix = "{mxgate}:"

// TimeKey is the key for id at t: t as 8-byte big-endian unix nanoseconds,
// then id. With an empty id it is just the 8 time bytes. t must be
// Indexable for the keys to sort by time.
//
// bbolt orders keys bytewise, and so does Redis for the members of a
// sorted set that all have score 0, so the same keys give the same order
// on both backends (a float score could not hold nanoseconds anyway).
func TimeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// LenPrefix is s preceded by its length as a uvarint. No LenPrefix is a
// prefix of another, so keys under one value never mix with another's.
func LenPrefix(s string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(s)))
	return append(k, s...)
}

// maxIDLen is the longest id CheckKey accepts.
const maxIDLen = 255

// CheckKey reports why a record with this id and time cannot be keyed by
// TimeKey(t, id): an empty id, an id longer than 255 bytes, or a t that is
// not Indexable. It returns nil when the key is fine.
func CheckKey(id string, t time.Time) error {
	if id == "" {
		return errors.New("empty id")
	}
	if len(id) > maxIDLen {
		return errors.New("id longer than 255 bytes")
	}
	if !Indexable(t) {
		return fmt.Errorf("time %v outside 1970..2262", t)
	}
	return nil
}

// Indexable reports whether t fits the unix-nanosecond time keys, that is
// whether it lies between 1970 and 2262.
func Indexable(t time.Time) bool {
	n := t.UnixNano()
	return n >= 0 && time.Unix(0, n).Equal(t)
}

// InRange reports whether t lies in the half-open range since <= t < until,
// where a zero since or until does not bound.
func InRange(t, since, until time.Time) bool {
	if !since.IsZero() && t.Before(since) {
		return false
	}
	if !until.IsZero() && !t.Before(until) {
		return false
	}
	return true
}

// bounds limits a walk over the keys prefix+TimeKey(t, id) to the
// half-open range since <= t < until; a zero or non-Indexable time does
// not bound. lower is the 8 time bytes to compare with those after prefix
// (nil = no lower bound); upper is the exclusive upper key (nil = none:
// the end of the bucket or set).
func bounds(prefix []byte, since, until time.Time) (lower, upper []byte) {
	if !since.IsZero() && Indexable(since) {
		lower = TimeKey(since, "")
	}
	upper = prefixEnd(prefix)
	if !until.IsZero() && Indexable(until) {
		upper = append(bytes.Clone(prefix), TimeKey(until, "")...)
	}
	return lower, upper
}

// prefixEnd is the smallest key above every key starting with p, or nil
// when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
