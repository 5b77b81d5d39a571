package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// Redis keys (under kv.Prefix's hash tag, one Cluster slot, so the MULTI
// below is legal there too).
const (
	keyReport = kv.Prefix + "report:"      // + day → Report JSON (SET NX: written once)
	keyDays   = kv.Prefix + "reports"      // ZSET day → unix seconds of its start
	keyMail   = kv.Prefix + "report:mail:" // + day → Mailing JSON (SET NX: claimed once)
)

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the reports in Redis: one key per day written with SET
// NX, and a sorted set of the days for Days.
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

func (s *redisStore) Create(ctx context.Context, r Report) (bool, error) {
	if err := checkDay(r.Day); err != nil {
		return false, fmt.Errorf("create report: %w", err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("create report %s: %w", r.Day, err)
	}
	day, _ := time.Parse(DayFormat, r.Day)
	// SET NX decides who wrote the day; the ZADD is idempotent, so it can
	// go along unconditionally in the same MULTI (one round trip).
	var set *redis.BoolCmd
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetNX(ctx, keyReport+r.Day, data, 0)
		p.ZAdd(ctx, keyDays, redis.Z{Score: float64(day.Unix()), Member: r.Day})
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("create report %s: %w", r.Day, err)
	}
	return set.Val(), nil
}

func (s *redisStore) Get(ctx context.Context, day string) (Report, error) {
	if err := checkDay(day); err != nil {
		return Report{}, fmt.Errorf("read report: %w", err)
	}
	v, err := s.c.Get(ctx, keyReport+day).Bytes()
	if errors.Is(err, redis.Nil) {
		return Report{}, fmt.Errorf("read report %s: %w", day, ErrNotFound)
	}
	if err != nil {
		return Report{}, fmt.Errorf("read report %s: %w", day, err)
	}
	var r Report
	if err := json.Unmarshal(v, &r); err != nil {
		return Report{}, fmt.Errorf("read report %s: decode: %w", day, err)
	}
	return r, nil
}

func (s *redisStore) Days(ctx context.Context, limit int) ([]string, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	days, err := s.c.ZRevRange(ctx, keyDays, 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	return days, nil
}

func (s *redisStore) ClaimMail(ctx context.Context, day string, m Mailing) (Mailing, bool, error) {
	if err := checkDay(day); err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail: %w", err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail %s: %w", day, err)
	}
	// SET NX GET (Redis 7): the claim and, when it loses, the one that
	// won, in one command.
	prev, err := s.c.SetArgs(ctx, keyMail+day, data, redis.SetArgs{Mode: "NX", Get: true}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return m, true, nil
	case err != nil:
		return Mailing{}, false, fmt.Errorf("claim report mail %s: %w", day, err)
	}
	var cur Mailing
	if err := json.Unmarshal(prev, &cur); err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail %s: decode: %w", day, err)
	}
	return cur, false, nil
}

// finishMail replaces (ARGV[2]) or deletes (ARGV[2] empty) the mailing
// of KEYS[1] if it is still the claim ARGV[1].
var finishMail = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "" then redis.call("DEL", KEYS[1]) else redis.call("SET", KEYS[1], ARGV[2]) end
return 1`)

func (s *redisStore) FinishMail(ctx context.Context, day string, m Mailing, sent bool) error {
	if err := checkDay(day); err != nil {
		return fmt.Errorf("finish report mail: %w", err)
	}
	claim := m
	claim.Sent = time.Time{}
	old, err := json.Marshal(claim)
	if err != nil {
		return fmt.Errorf("finish report mail %s: %w", day, err)
	}
	var next []byte
	if sent {
		if next, err = json.Marshal(m); err != nil {
			return fmt.Errorf("finish report mail %s: %w", day, err)
		}
	}
	if err := finishMail.Run(ctx, s.c, []string{keyMail + day}, old, next).Err(); err != nil {
		return fmt.Errorf("finish report mail %s: %w", day, err)
	}
	return nil
}
