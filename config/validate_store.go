package config

import (
	"net/url"
	"strings"
	"time"
)

func (s Store) validate(p *problems) {
	if s.Redis != "" {
		// The URL may carry a password: never echo it.
		u, err := url.Parse(s.Redis)
		switch {
		case err != nil:
			p.add("store.redis", "not a valid URL")
		case !strings.HasPrefix(u.Scheme, "redis"):
			p.add("store.redis", "want a redis://, rediss://, redis-sentinel:// or redis+cluster URL, got scheme %q", u.Scheme)
		case u.Host == "":
			p.add("store.redis", "the URL has no host")
		}
	}
	p.durationUpTo("store.quarantine_retention", s.QuarantineRetention, MaxRetention)
	p.durationUpTo("store.log_retention", s.LogRetention, MaxRetention)
	if m := s.LogJournalMax; m < 1<<20 || m > 16<<30 {
		p.add("store.log_journal_max", "must be 1048576 (1 MiB) to 17179869184 (16 GiB) bytes, got %d", m)
	}
	if d := s.LogJournalSync.Duration; d < 0 || d > 10*time.Second {
		p.add("store.log_journal_sync", "must be 0 (sync before the reply) to 10s, got %s", d)
	}
}
