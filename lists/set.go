package lists

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Set is a compiled, immutable snapshot of the lists, built for Policy,
// which runs on every RCPT: addresses and domains are map lookups (one per
// label of the sender domain for ".domain" entries), networks a short
// linear scan. A nil *Set matches nothing.
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
// recipient domain, or global). A value has at most one allow and one
// block entry per level (EntryKey), so a slot holds both.
type level struct {
	addrs    map[string]*slot // "user@example.org"
	domains  map[string]*slot // "example.org" from "@example.org"
	subs     map[string]*slot // "example.org" from ".example.org"
	ips      map[netip.Addr]*slot
	prefixes []prefixSlot // longest first, so the narrowest network is named
}

type slot struct{ allow, block *Entry }

type prefixSlot struct {
	p netip.Prefix
	s *slot
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
		l.add(strings.ToLower(e.Value), &e)
	}
	for _, l := range s.levels() {
		slices.SortStableFunc(l.prefixes, func(a, b prefixSlot) int { return cmp.Compare(b.p.Bits(), a.p.Bits()) })
	}
	return s
}

func (s *Set) levels() []*level {
	out := []*level{&s.global}
	for _, l := range s.rcpt {
		out = append(out, l)
	}
	return out
}

func (l *level) add(v string, e *Entry) {
	get := func(m *map[string]*slot, k string) *slot {
		if *m == nil {
			*m = map[string]*slot{}
		}
		if (*m)[k] == nil {
			(*m)[k] = &slot{}
		}
		return (*m)[k]
	}
	var sl *slot
	switch {
	case strings.HasPrefix(v, "@"):
		sl = get(&l.domains, v[1:])
	case strings.HasPrefix(v, "."):
		sl = get(&l.subs, v[1:])
	case strings.Contains(v, "@"):
		sl = get(&l.addrs, v)
	case strings.Contains(v, "/"):
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return
		}
		for i := range l.prefixes {
			if l.prefixes[i].p == p {
				sl = l.prefixes[i].s
			}
		}
		if sl == nil {
			sl = &slot{}
			l.prefixes = append(l.prefixes, prefixSlot{p, sl})
		}
	default:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return
		}
		if l.ips == nil {
			l.ips = map[netip.Addr]*slot{}
		}
		if sl = l.ips[a]; sl == nil {
			sl = &slot{}
			l.ips[a] = sl
		}
	}
	if e.Kind == Allow {
		sl.allow = e
	} else {
		sl.block = e
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
	// Entry is the entry that decided (zero when none did): for the
	// reply, which names it, and for the message log.
	Entry Entry
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
// level says so. The entry reported is the most specific that decided
// (address, domain, nearest parent domain, IP address, narrowest network),
// or the one that waives the attachment policy.
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

// decision gathers the matching slots of one level, most specific first.
type decision struct{ allow, skip, block *Entry }

func (d *decision) see(sl *slot) {
	if sl == nil {
		return
	}
	if a := sl.allow; a != nil {
		if d.allow == nil {
			d.allow = a
		}
		if a.SkipAttachments && d.skip == nil {
			d.skip = a
		}
	}
	if sl.block != nil && d.block == nil {
		d.block = sl.block
	}
}

func (l *level) match(sender, sdom string, client netip.Addr) Policy {
	var d decision
	if sender != "" && l.addrs != nil {
		d.see(l.addrs[sender])
	}
	if sdom != "" {
		if l.domains != nil {
			d.see(l.domains[sdom])
		}
		if len(l.subs) > 0 {
			for dom := sdom; ; {
				d.see(l.subs[dom])
				i := strings.IndexByte(dom, '.')
				if i < 0 {
					break
				}
				dom = dom[i+1:]
			}
		}
	}
	if client.IsValid() {
		if l.ips != nil {
			d.see(l.ips[client])
		}
		for _, p := range l.prefixes {
			if d.skip != nil {
				break // nothing can change the decision
			}
			if p.p.Contains(client) {
				d.see(p.s)
			}
		}
	}
	switch {
	case d.skip != nil:
		return Policy{Kind: Allow, SkipAttachments: true, Entry: *d.skip}
	case d.allow != nil:
		return Policy{Kind: Allow, Entry: *d.allow}
	case d.block != nil:
		return Policy{Kind: Block, Entry: *d.block}
	}
	return Policy{}
}
