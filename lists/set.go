package lists

import (
	"net/netip"
	"strings"
)

const (
	bitAllow uint8 = 1 << iota
	bitBlock
	bitSkipAttachments // an allow entry with SkipAttachments
)

// Set is a compiled, immutable snapshot of the lists, built for Match, which
// runs on every RCPT: addresses and domains are map lookups (one per label
// of the sender domain for ".domain" entries), networks a short linear scan.
// A nil *Set matches nothing.
//
// Sender addresses match case-insensitively as a whole, local part
// included: RFC 5321 lets the local part be case-sensitive, but no real
// mail system relies on that, and a block list that "User@" evades would be
// worse than a rare over-match.
type Set struct {
	global level
	rcpt   map[string]*level // lower-cased address or "@domain"
	n      int
}

// level holds the entries of one precedence level (one recipient, one
// recipient domain, or global), each value mapped to its kind bits.
type level struct {
	addrs    map[string]uint8 // "user@example.org"
	domains  map[string]uint8 // "example.org" from "@example.org"
	subs     map[string]uint8 // "example.org" from ".example.org"
	ips      map[netip.Addr]uint8
	prefixes []prefixBits
}

type prefixBits struct {
	p    netip.Prefix
	bits uint8
}

// Compile builds a Set. Entries that are not valid are skipped, entries
// that differ only in case count once.
func Compile(entries []Entry) *Set {
	s := &Set{rcpt: map[string]*level{}}
	seen := map[string]bool{}
	for _, e := range entries {
		e, err := Normalize(e)
		if err != nil {
			continue
		}
		k := EntryKey(e.Kind, e.Value, e.Rcpt)
		if seen[k] {
			continue
		}
		seen[k] = true
		s.n++
		l := &s.global
		if e.Rcpt != "" {
			r := strings.ToLower(e.Rcpt)
			if l = s.rcpt[r]; l == nil {
				l = &level{}
				s.rcpt[r] = l
			}
		}
		bit := bitBlock
		if e.Kind == Allow {
			bit = bitAllow
			if e.SkipAttachments {
				bit |= bitSkipAttachments
			}
		}
		l.add(strings.ToLower(e.Value), bit)
	}
	return s
}

func (l *level) add(v string, bit uint8) {
	set := func(m *map[string]uint8, k string) {
		if *m == nil {
			*m = map[string]uint8{}
		}
		(*m)[k] |= bit
	}
	switch {
	case strings.HasPrefix(v, "@"):
		set(&l.domains, v[1:])
	case strings.HasPrefix(v, "."):
		set(&l.subs, v[1:])
	case strings.Contains(v, "@"):
		set(&l.addrs, v)
	case strings.Contains(v, "/"):
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return
		}
		for i := range l.prefixes {
			if l.prefixes[i].p == p {
				l.prefixes[i].bits |= bit
				return
			}
		}
		l.prefixes = append(l.prefixes, prefixBits{p, bit})
	default:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return
		}
		if l.ips == nil {
			l.ips = map[netip.Addr]uint8{}
		}
		l.ips[a] |= bit
	}
}

// Len is the number of entries in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Policy is what the lists say about one recipient of a message.
type Policy struct {
	Kind Kind // Allow, Block, or "" when no entry matches
	// SkipAttachments: an allow entry that decided also waives the
	// attachment policy.
	SkipAttachments bool
}

// Match is Policy's Kind.
func (s *Set) Match(sender string, client netip.Addr, rcpt string) Kind {
	return s.Policy(sender, client, rcpt).Kind
}

// Policy returns what the lists say about a sender (the envelope address,
// "" for the null sender) from client for rcpt. The most specific level
// with a match decides: entries for rcpt itself, then for rcpt's domain
// ("@domain"), then global. Within a level allow beats block, so an allow
// entry can carve an exception out of a block on a wider pattern; the
// attachment policy is waived when any allow entry that matches at that
// level says so.
func (s *Set) Policy(sender string, client netip.Addr, rcpt string) Policy {
	if s == nil {
		return Policy{}
	}
	sender = strings.ToLower(sender)
	sdom := ""
	if at := strings.LastIndexByte(sender, '@'); at >= 0 {
		sdom = strings.TrimSuffix(sender[at+1:], ".")
	}
	client = client.Unmap()
	if rcpt != "" && len(s.rcpt) > 0 {
		rcpt = strings.ToLower(rcpt)
		if l := s.rcpt[rcpt]; l != nil {
			if p := l.match(sender, sdom, client); p.Kind != "" {
				return p
			}
		}
		if at := strings.LastIndexByte(rcpt, '@'); at >= 0 {
			if l := s.rcpt["@"+strings.TrimSuffix(rcpt[at+1:], ".")]; l != nil {
				if p := l.match(sender, sdom, client); p.Kind != "" {
					return p
				}
			}
		}
	}
	return s.global.match(sender, sdom, client)
}

func (l *level) match(sender, sdom string, client netip.Addr) Policy {
	var bits uint8
	if sender != "" {
		bits |= l.addrs[sender]
	}
	if sdom != "" {
		bits |= l.domains[sdom]
		if len(l.subs) > 0 {
			for d := sdom; ; {
				bits |= l.subs[d]
				i := strings.IndexByte(d, '.')
				if i < 0 {
					break
				}
				d = d[i+1:]
			}
		}
	}
	if client.IsValid() {
		bits |= l.ips[client]
		for _, p := range l.prefixes {
			if bits&bitSkipAttachments != 0 {
				break // nothing can add to that
			}
			if p.p.Contains(client) {
				bits |= p.bits
			}
		}
	}
	switch {
	case bits&bitAllow != 0:
		return Policy{Kind: Allow, SkipAttachments: bits&bitSkipAttachments != 0}
	case bits&bitBlock != 0:
		return Policy{Kind: Block}
	}
	return Policy{}
}
