package kv

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis side of the time-ordered indexes: sorted sets whose members
// all have score 0 and are the bbolt index keys themselves (TimeKey,
// optionally after a LenPrefix'd value). Redis orders equal-score members
// bytewise, like bbolt's cursor, so LexRange visits what WalkBack visits,
// in the same order.

// LexRange walks the members of the lex-ordered sorted set key that start
// with prefix and whose TimeKey after prefix may lie in since <= t < until
// (zero or non-Indexable bounds do not bound; fn must check the range
// itself), page members per ZRANGE, newest first when rev, else oldest
// first. fn gets each page's members with prefix removed and returns
// whether to go on. It mirrors WalkBack, so both backends visit the
// same keys in the same order.
func LexRange(ctx context.Context, c redis.UniversalClient, key string, prefix []byte, since, until time.Time, rev bool, page int64, fn func(tks []string) (more bool, err error)) error {
	if !until.IsZero() && until.Before(time.Unix(0, 0)) {
		return nil // nothing is stored before 1970
	}
	p := string(prefix)
	lower, upper := bounds(prefix, since, until)
	lo, hi := "-", "+"
	switch {
	case lower != nil:
		lo = "[" + p + string(lower)
	case p != "":
		lo = "[" + p
	}
	if upper != nil {
		hi = "(" + string(upper)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		args := redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByLex: true, Count: page}
		if rev {
			args.Start, args.Stop, args.Rev = hi, lo, true
		}
		members, err := c.ZRangeArgs(ctx, args).Result()
		if err != nil {
			return err
		}
		tks := make([]string, 0, len(members))
		for _, m := range members {
			if len(m) >= len(p)+8 {
				tks = append(tks, m[len(p):])
			}
		}
		if len(tks) > 0 {
			if more, err := fn(tks); err != nil || !more {
				return err
			}
		}
		if int64(len(members)) < page {
			return nil
		}
		last := members[len(members)-1]
		if rev {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}
