package scanner

import (
	"bytes"
	"regexp/syntax"
	"unicode/utf8"
)

// Go's regexp runs at some 15 MB/s on a pattern without a literal prefix,
// such as the case-insensitive alternations spam rules are made of: six
// such rules over a 10 KB message took 1.6 ms. Most rules do not match most
// mail, so each rule carries literals of which at least one must occur in
// any text it matches, and a cheap substring search over the text
// (lowercased once per message) skips the regex when none does.

const (
	minPrefilterLen  = 3  // shorter literals occur everywhere
	maxPrefilterLits = 64 // more cost more than the regex saves
)

// prefilterFor returns the required literals of a regex, ASCII-lowercased,
// or nil when there is no useful set (the regex then always runs).
func prefilterFor(src string) []string {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := required(re.Simplify())
	if !ok || len(lits) > maxPrefilterLits || minLen(lits) < minPrefilterLen {
		return nil
	}
	return lits
}

// required reports a set of strings one of which occurs in every match.
func required(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s, ok := literal(re.Rune, re.Flags&syntax.FoldCase != 0)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		for _, sub := range re.Sub {
			if s, ok := required(sub); ok && (best == nil || minLen(s) > minLen(best)) {
				best = s
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			s, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, s...)
			if len(all) > maxPrefilterLits {
				return nil, false
			}
		}
		return all, true
	}
	return nil, false
}

// literal renders the runes as they appear in lowercased text. Case folding
// of non-ASCII runes is not modelled (no set then); the two non-ASCII runes
// that fold to ASCII letters (U+017F ſ, U+212A Kelvin) switch prefilters off
// for the message instead, see foldTrap.
func literal(rs []rune, fold bool) (string, bool) {
	b := make([]byte, 0, len(rs))
	for _, r := range rs {
		switch {
		case r == utf8.RuneError:
			// Invalid input bytes match U+FFFD without being EF BF BD.
			return "", false
		case r < utf8.RuneSelf:
			b = append(b, lowerASCII(byte(r)))
		case fold:
			return "", false
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b), true
}

func minLen(ss []string) int {
	n := -1
	for _, s := range ss {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	return n
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func lowerBytes(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lowerTable[c]
	}
	return out
}

var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = lowerASCII(byte(i))
	}
	return t
}()

// foldTrap reports text where a case-insensitive ASCII literal can match a
// non-ASCII rune (ſ for s, the Kelvin sign for k).
func foldTrap(b []byte) bool {
	return bytes.Contains(b, []byte("\u017f")) || bytes.Contains(b, []byte("\u212a"))
}

// prefilterText is one rule input prepared for the prefilters.
type prefilterText struct {
	src   []byte
	low   []byte
	ready bool
	off   bool
}

// mayMatch is false only when the regex cannot match.
func (t *prefilterText) mayMatch(lits []string) bool {
	if lits == nil {
		return true
	}
	if !t.ready {
		t.ready = true
		t.low = lowerBytes(t.src)
		t.off = foldTrap(t.src)
	}
	if t.off {
		return true
	}
	for _, l := range lits {
		if bytes.Contains(t.low, []byte(l)) {
			return true
		}
	}
	return false
}
