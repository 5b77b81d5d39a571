package scanner

import (
	"errors"
	"strings"

	"github.com/mxgate/mxgate/engines"
)

// Header fields the merge adds for the outside engines.
const (
	// hdrEngineFailed names the engines that gave no verdict on a message
	// delivered anyway (on_error: accept): "clamd (timeout), spamd (connect)".
	hdrEngineFailed = "X-Mxgate-Engine-Failed"
	// hdrSubjectRewrite carries the Subject an engine asked for (Rspamd's
	// rewrite subject): the message's own Subject is left as it came, and a
	// filter downstream (Sieve) may apply it.
	hdrSubjectRewrite = "X-Mxgate-Subject-Rewrite"

	// maxExtraHeaders and maxExtraHeaderLen bound what the engines add to a
	// delivered message.
	maxExtraHeaders   = 20
	maxExtraHeaderLen = 998 // RFC 5322 §2.1.1

	classEngineFailed = "engine_failed"
	// reasonEngineDown is the 451 text of on_error tempfail: it names no
	// engine to the client.
	reasonEngineDown = "Content scanner unavailable, try again later"
	// Followed by ": " and the failed engines (the quarantine's reason).
	reasonEngineFailed = "Content scanner unavailable"
	reasonDeferred     = "Message deferred, try again later"
)

// outside is what the outside engines said of one message, folded.
type outside struct {
	symbols []Symbol
	viruses []string
	limits  []string // engines the message was too large for, said to the client
	action  Action   // the strictest engine Action ("" = none)
	// actionReason and actionClass came with action (cleaned; "" = the
	// generic reason, class spam).
	actionReason, actionClass string
	failed                    []string // "clamd (timeout)"
	onError                   Action   // the strictest on_error of the failed engines
	headers                   []string
}

// foldEngines reads the engines' outcomes: a result's symbols (scores ×
// score_weight), viruses, action and headers; an error as the engine's
// failure (symbol <ENGINE>_FAIL, its on_error) or, for a message too large
// for it, a limit (clamd: not scanned for viruses, so on_limit) or a mark
// (the spam engines: <ENGINE>_TOO_LARGE, scored as if they had found
// nothing: spamd is skipped on big mail by design).
func foldEngines(calls []engineCall) outside {
	var o outside
	for _, c := range calls {
		prefix := strings.ToUpper(c.name)
		switch {
		case c.err == nil:
			for _, s := range c.res.Symbols {
				s.Score *= c.settings.ScoreWeight
				s.Detail = cleanDetail(s.Detail)
				o.symbols = append(o.symbols, s)
			}
			o.viruses = append(o.viruses, c.res.Viruses...)
			if stricter(c.res.Action, o.action) {
				o.action = c.res.Action
				o.actionReason, o.actionClass = cleanHeaderValue(c.res.Reason), c.res.Class
			}
			for _, h := range c.res.Headers {
				if h, ok := engineHeader(h); ok {
					o.headers = append(o.headers, h)
				}
			}
			if subj := cleanHeaderValue(c.res.Subject); subj != "" {
				o.headers = append(o.headers, hdrSubjectRewrite+": "+subj)
			}
		case errors.Is(c.err, engines.ErrTooLarge) && c.name == EngineClamd:
			o.symbols = append(o.symbols, Symbol{Name: prefix + "_TOO_LARGE", Detail: "not scanned: larger than " + c.name + " takes"})
			o.limits = append(o.limits, "larger than the virus scanner ("+c.name+") takes")
		case errors.Is(c.err, engines.ErrTooLarge):
			o.symbols = append(o.symbols, Symbol{Name: prefix + "_TOO_LARGE", Detail: "skipped: larger than " + c.name + "'s max_size"})
		default:
			kind := engines.Kind(c.err)
			o.symbols = append(o.symbols, Symbol{Name: prefix + "_FAIL", Detail: kind})
			o.failed = append(o.failed, engineFailure(c.name, kind))
			onErr := c.settings.OnError
			if onErr == "" {
				onErr = ActionTempfail // an engine without settings fails closed
			}
			if o.onError == "" || rank(onErr) > rank(o.onError) {
				o.onError = onErr
			}
		}
	}
	if len(o.failed) > 0 {
		o.headers = append(o.headers, hdrEngineFailed+": "+strings.Join(o.failed, ", "))
	}
	if len(o.headers) > maxExtraHeaders {
		o.headers = o.headers[:maxExtraHeaders]
	}
	return o
}

// rank orders actions by strictness: reject > tempfail > quarantine >
// deliver (accept, on_error's delivery, ranks with deliver).
func rank(a Action) int {
	switch a {
	case ActionReject:
		return 4
	case ActionTempfail:
		return 3
	case ActionQuarantine:
		return 2
	case ActionDeliver, actionAccept:
		return 1
	}
	return 0
}

func stricter(a, than Action) bool { return rank(a) > rank(than) }

// engineHeader checks a header line an engine asks to add: "Name: value"
// with a field name (RFC 5322 ftext) that is not one of ours, the value
// made one printable line, bounded.
func engineHeader(line string) (string, bool) {
	name, value, ok := strings.Cut(line, ":")
	if !ok || name == "" || !isFieldName(name) || strings.HasPrefix(strings.ToLower(name), ownHeaderPrefix) {
		return "", false
	}
	return cleanHeaderLine(name + ": " + strings.TrimSpace(value)), true
}

func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// cleanHeaderLine makes a header line safe to write as it is: printable
// ASCII (a tab or a control character becomes a space, so no CR or LF can
// start a field of its own), at most maxExtraHeaderLen bytes. Verdicts
// from peers pass through it too.
func cleanHeaderLine(s string) string {
	b := make([]byte, 0, min(len(s), maxExtraHeaderLen))
	for i := 0; i < len(s) && len(b) < maxExtraHeaderLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, ' ')
		}
	}
	return string(b)
}

func cleanHeaderValue(s string) string { return strings.TrimSpace(cleanHeaderLine(s)) }
