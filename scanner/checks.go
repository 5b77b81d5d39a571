package scanner

import (
	"context"
	"mime"
	nettextproto "net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Symbol names and scores of the built-in checks: the names are what
// admins see in X-Mxgate-Symbols and write rules next to.
const (
	symGTUBE            = "GTUBE"
	symEICAR            = "EICAR_TEST"
	symBannedExt        = "BANNED_EXTENSION"
	symDoubleExt        = "DOUBLE_EXTENSION"
	symBannedType       = "BANNED_MIME_TYPE"
	symArchiveBannedExt = "ARCHIVE_BANNED_EXTENSION"
	symArchiveDoubleExt = "ARCHIVE_DOUBLE_EXTENSION"
	symArchiveType      = "ARCHIVE_BANNED_MIME_TYPE"
	symArchiveEncrypted = "ARCHIVE_ENCRYPTED"
	symArchiveLimit     = "ARCHIVE_LIMIT_EXCEEDED"
	symArchiveMalformed = "ARCHIVE_MALFORMED"
	symMIMEMalformed    = "MIME_MALFORMED"
	symMIMETooDeep      = "MIME_TOO_DEEP"
	symMIMETooManyParts = "MIME_TOO_MANY_PARTS"
	symMIMEAmbiguous    = "MIME_AMBIGUOUS"
	symMIMETooAmbiguous = "MIME_TOO_AMBIGUOUS"
	symSizeLarge        = "SIZE_LARGE"
	symAllowlist        = "ALLOWLIST"

	virusEICAR = "Eicar-Test-Signature"

	scoreGTUBE     = 10
	scoreEICAR     = 10
	scoreBanned    = 10
	scoreEncrypted = 3
	scoreLimit     = 3
	scoreArchBad   = 1
	scoreMalformed = 1
	scoreTooDeep   = 3
	scoreTooMany   = 3
	// Conflicting structural fields are forbidden by RFC 2045 and all but
	// absent from real mail; every reading is scanned anyway, so alone
	// the symbol stays below the quarantine threshold.
	scoreAmbiguous = 5

	sniffedExe = "application/x-dosexec"

	reasonSpam   = "Message rejected as spam"
	reasonVirus  = "Message contains a virus"
	reasonBanned = "Message contains a blocked attachment"
	// Followed by ": " and the first limit hit.
	reasonUnscannable = "Message could not be scanned completely"
)

var builtinSymbols = []string{
	symGTUBE, symEICAR, symBannedExt, symDoubleExt, symBannedType, symArchiveBannedExt,
	symArchiveDoubleExt, symArchiveType, symArchiveEncrypted, symArchiveLimit, symArchiveMalformed,
	symMIMEMalformed, symMIMETooDeep, symMIMETooManyParts, symMIMEAmbiguous, symMIMETooAmbiguous,
	symSizeLarge, symAllowlist,
}

// check is one step of the pipeline. Checks run over the message parsed
// once (parsed), so adding one costs no extra pass over the body.
type check interface {
	Name() string
	Check(ctx context.Context, p *parsed) (result, error)
}

// result is what one check found. Its score is the sum of its symbols'.
type result struct {
	symbols []Symbol
	viruses []string
	banned  bool     // attachment policy: quarantined as "banned"
	allow   bool     // the envelope is allowlisted
	skipAtt bool     // ... by an entry that waives the attachment policy too
	limits  []string // what was not scanned, said to the client: no message content
}

func (r *result) add(name string, score float64, detail string) {
	r.symbols = append(r.symbols, Symbol{Name: name, Score: score, Detail: detail})
}

// merge turns the results of all checks and of the outside engines into
// the verdict; it is the only place where scores become actions.
//
// Engine symbols (prefixed by their clients: CLAMD_, RSPAMD_, SPAMD_) join
// the built-in ones, their scores multiplied by the engine's score_weight
// and added into the one score; engine viruses join Viruses.
//
// Order: a virus, from a check or any engine, gets VirusAction whatever
// else (a virus found before a limit still counts, and an allowlist does
// not bypass virus detection); then content that could not be scanned
// completely gets OnLimit (class unscannable: what lies past a limit, or a
// message larger than clamd takes, is never reported clean, allowlisted or
// not); then the reject threshold, unless allowlisted; then the attachment
// policy, which an allow entry waives only when it says so
// (skip_attachments: a forged MAIL FROM must not carry an .exe in); then
// the allowlist; then the quarantine threshold. The banned symbols' own
// scores do not count towards reject: an "invoice.pdf.exe" that is also
// typed application/x-msdownload collects three banned symbols, and it is
// still an attachment for the admin to release from quarantine, not spam
// to refuse.
//
// Past the virus and the limits, two things can only make the outcome
// stricter (reject > tempfail > quarantine > deliver):
//   - an engine's own action (Rspamd's reject, soft reject as tempfail,
//     add header or rewrite subject as deliver with its headers), unless
//     the message is allowlisted: the allowlist waives engine verdicts as
//     it waives scores;
//   - an engine that gave no verdict (down, too slow, a reply not
//     understood): the strictest on_error of the failed engines, allowlist
//     or not (it may have been the virus scanner). tempfail answers 451
//     "Content scanner unavailable"; quarantine holds it as class
//     engine_failed; accept lets the outcome stand, but a message that
//     would have been clean is delivered as class engine_failed, never
//     clean. Every failed engine leaves the symbol <ENGINE>_FAIL (score 0,
//     the kind of error as detail) and, on delivery, the header
//     X-Mxgate-Engine-Failed: clamd (timeout).
//
// The engines' headers (and a rewritten Subject, as
// X-Mxgate-Subject-Rewrite) go into ExtraHeaders, added on delivery.
func merge(o *Options, results []result, calls []engineCall) Verdict {
	var v Verdict
	var banned, allow, skipAtt bool
	var bannedScore float64
	var limits []string
	for _, r := range results {
		v.Symbols = append(v.Symbols, r.symbols...)
		v.Viruses = append(v.Viruses, r.viruses...)
		banned = banned || r.banned
		allow = allow || r.allow
		skipAtt = skipAtt || r.allow && r.skipAtt
		limits = append(limits, r.limits...)
		if r.banned {
			for _, s := range r.symbols {
				bannedScore += s.Score
			}
		}
	}
	ext := foldEngines(calls)
	v.Symbols = append(v.Symbols, ext.symbols...)
	v.Viruses = append(v.Viruses, ext.viruses...)
	limits = append(limits, ext.limits...)
	v.ExtraHeaders = ext.headers
	sortSymbols(v.Symbols)
	for _, s := range v.Symbols {
		v.Score += s.Score
	}
	slices.Sort(v.Viruses)
	v.Viruses = slices.Compact(v.Viruses)
	v.Node = o.NodeID

	switch {
	case len(v.Viruses) > 0:
		v.Action, v.Class, v.Reason = o.VirusAction, classVirus, reasonVirus
		return v
	case len(limits) > 0:
		v.Action, v.Class, v.Reason = o.OnLimit, classUnscannable, reasonUnscannable+": "+limits[0]
		return v
	case !allow && v.Score-bannedScore >= o.Thresholds.Reject:
		v.Action, v.Class, v.Reason = ActionReject, classSpam, reasonSpam
	case banned && !skipAtt:
		v.Action, v.Class, v.Reason = ActionQuarantine, classBanned, reasonBanned
	case allow:
		v.Action, v.Class = ActionDeliver, classClean
	case v.Score >= o.Thresholds.Quarantine:
		v.Action, v.Class, v.Reason = ActionQuarantine, classSpam, reasonSpam
	default:
		v.Action, v.Class = ActionDeliver, classClean
	}
	if !allow && stricter(ext.action, v.Action) {
		v.Action, v.Class, v.Reason = ext.action, classSpam, reasonSpam
		if ext.action == ActionTempfail {
			v.Reason = reasonDeferred
		}
		if ext.actionClass == classPolicy {
			v.Class = classPolicy
		}
		if ext.actionReason != "" {
			v.Reason = ext.actionReason
		}
	}
	switch {
	case ext.onError == "":
	case stricter(ext.onError, v.Action):
		v.Action, v.Class, v.Reason = ext.onError, classEngineFailed, reasonEngineFailed+": "+strings.Join(ext.failed, ", ")
		if ext.onError == ActionTempfail {
			v.Reason = reasonEngineDown
		}
	case v.Class == classClean:
		v.Class = classEngineFailed
	}
	return v
}

type gtubeCheck struct{}

func (gtubeCheck) Name() string { return "gtube" }

func (gtubeCheck) Check(_ context.Context, p *parsed) (result, error) {
	var r result
	switch {
	case p.found&patGTUBE != 0:
		r.add(symGTUBE, scoreGTUBE, p.where[0].String())
	case p.rawFound&patGTUBE != 0:
		r.add(symGTUBE, scoreGTUBE, p.rawWhere[0].String())
	}
	return r, nil
}

type eicarCheck struct{}

func (eicarCheck) Name() string { return "eicar" }

func (eicarCheck) Check(_ context.Context, p *parsed) (result, error) {
	var r result
	switch {
	case p.found&patEICAR != 0:
		r.add(symEICAR, scoreEICAR, p.where[1].String())
	case p.rawFound&patEICAR != 0:
		r.add(symEICAR, scoreEICAR, p.rawWhere[1].String())
	default:
		return r, nil
	}
	r.viruses = []string{virusEICAR}
	return r, nil
}

// attachmentCheck applies the blocked extension and type lists to the MIME
// parts and to the files inside archives.
type attachmentCheck struct{ policy attachPolicy }

func (attachmentCheck) Name() string { return "attachments" }

func (c attachmentCheck) Check(_ context.Context, p *parsed) (result, error) {
	var ext, dbl, typ, aext, adbl, atyp lister
	for _, lf := range p.leaves {
		for _, n := range lf.names {
			b, d := c.policy.checkName(n)
			ext.addIf(b, n)
			dbl.addIf(d, n)
		}
		label := firstName(lf.names, lf.part)
		typ.addIf(c.policy.blockedType(lf.ctype), label+" ("+lf.ctype+")")
		typ.addIf(lf.exe && c.policy.blockedType(sniffedExe), label+" (content "+sniffedExe+")")
	}
	for _, e := range p.entries {
		b, d := c.policy.checkName(e.name)
		label := e.container + ": " + e.name
		aext.addIf(b, label)
		adbl.addIf(d, label)
		atyp.addIf(e.exe && c.policy.blockedType(sniffedExe), label+" (content "+sniffedExe+")")
	}
	var r result
	ext.emit(&r, symBannedExt, scoreBanned)
	dbl.emit(&r, symDoubleExt, scoreBanned)
	typ.emit(&r, symBannedType, scoreBanned)
	aext.emit(&r, symArchiveBannedExt, scoreBanned)
	adbl.emit(&r, symArchiveDoubleExt, scoreBanned)
	atyp.emit(&r, symArchiveType, scoreBanned)
	r.banned = len(r.symbols) > 0
	return r, nil
}

// lister gathers what one symbol is about, for its detail.
type lister struct {
	items []string
	n     int
}

func (l *lister) addIf(cond bool, item string) {
	if !cond {
		return
	}
	item = cleanDetail(item)
	if slices.Contains(l.items, item) {
		// The same file seen by another reading of the message.
		return
	}
	l.n++
	if len(l.items) < maxListed {
		l.items = append(l.items, item)
	}
}

func (l *lister) emit(r *result, name string, score float64) {
	if l.n == 0 {
		return
	}
	d := strings.Join(l.items, ", ")
	if l.n > len(l.items) {
		d += " and " + strconv.Itoa(l.n-len(l.items)) + " more"
	}
	r.add(name, score, d)
}

type archiveCheck struct{ o *Options }

func (archiveCheck) Name() string { return "archives" }

func (c archiveCheck) Check(_ context.Context, p *parsed) (result, error) {
	var enc lister
	for _, e := range p.entries {
		enc.addIf(e.encrypted, e.container+": "+e.name)
	}
	var r result
	enc.emit(&r, symArchiveEncrypted, scoreEncrypted)
	if len(p.archiveLimit) > 0 {
		r.add(symArchiveLimit, scoreLimit, strings.Join(p.archiveLimit, "; "))
		r.limits = archiveLimitReasons(p.archiveLimits, c.o)
	}
	if len(p.archiveBad) > 0 {
		r.add(symArchiveMalformed, scoreArchBad, strings.Join(p.archiveBad, "; "))
	}
	return r, nil
}

// archiveLimitReasons says which archive limits were hit, in words fit for
// the client: the limits, not the names of the files.
func archiveLimitReasons(l limit, o *Options) []string {
	var out []string
	for _, x := range []struct {
		l    limit
		text string
	}{
		{limitArchiveBytes, "more than " + strconv.FormatInt(o.MaxArchiveBytes, 10) + " uncompressed archive bytes"},
		{limitArchiveSize, "an archive or encoded file larger than " + strconv.FormatInt(o.MaxArchiveBytes, 10) + " bytes"},
		{limitArchiveEntries, "more than " + strconv.Itoa(o.MaxArchiveEntries) + " archive entries"},
		{limitArchiveNesting, "archives nested deeper than " + strconv.Itoa(maxArchiveNesting)},
		{limitArchiveRecords, "an archive with too many directory records"},
		{limitArchiveMethod, "an archive entry compressed with a method that is not supported"},
	} {
		if l&x.l != 0 {
			out = append(out, x.text)
		}
	}
	return out
}

type mimeCheck struct{ o *Options }

func (mimeCheck) Name() string { return "mime" }

func (c mimeCheck) Check(_ context.Context, p *parsed) (result, error) {
	var r result
	if len(p.malformed) > 0 {
		r.add(symMIMEMalformed, scoreMalformed, strings.Join(p.malformed, "; "))
	}
	if len(p.ambiguous) > 0 {
		r.add(symMIMEAmbiguous, scoreAmbiguous, strings.Join(p.ambiguous, "; ")+"; "+strconv.Itoa(p.readings)+" readings scanned")
	}
	if p.tooManyParts {
		d := "more than " + strconv.Itoa(c.o.MaxMIMEParts) + " MIME parts"
		r.add(symMIMETooManyParts, scoreTooMany, d)
		r.limits = append(r.limits, d)
	}
	if p.tooDeep {
		d := "MIME nesting deeper than " + strconv.Itoa(c.o.MaxMIMEDepth)
		r.add(symMIMETooDeep, scoreTooDeep, d)
		r.limits = append(r.limits, d)
	}
	if p.tooManyReadings {
		d := "more than " + strconv.Itoa(maxReadings) + " ways to read its MIME structure"
		r.add(symMIMETooAmbiguous, scoreLimit, d)
		r.limits = append(r.limits, d)
	}
	return r, nil
}

type sizeCheck struct{ limit int64 }

func (sizeCheck) Name() string { return "size" }

func (c sizeCheck) Check(_ context.Context, p *parsed) (result, error) {
	var r result
	if c.limit > 0 && p.size > c.limit {
		r.add(symSizeLarge, 0, strconv.FormatInt(p.size, 10)+" bytes")
	}
	return r, nil
}

type allowCheck struct{}

func (allowCheck) Name() string { return "allowlist" }

func (allowCheck) Check(_ context.Context, p *parsed) (result, error) {
	var r result
	switch {
	case p.msg.Allowlisted && p.msg.SkipAttachments:
		r.add(symAllowlist, 0, "envelope allowlisted"+byEntry(p.msg.AllowedBy)+", attachment policy waived")
		r.allow, r.skipAtt = true, true
	case p.msg.Allowlisted:
		r.add(symAllowlist, 0, "envelope allowlisted"+byEntry(p.msg.AllowedBy))
		r.allow = true
	}
	return r, nil
}

func byEntry(entry string) string {
	if entry == "" {
		return ""
	}
	return " by " + entry
}

// ruleCheck runs the configured regex rules.
type ruleCheck struct{ rules []Rule }

func (ruleCheck) Name() string { return "rules" }

func (c ruleCheck) Check(ctx context.Context, p *parsed) (result, error) {
	var r result
	var hv headerValues
	text := prefilterText{src: p.text}
	raw := prefilterText{src: p.raw}
	for i := range c.rules {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		rl := &c.rules[i]
		var hit bool
		switch rl.kind {
		case kindBody:
			hit = text.mayMatch(rl.pre) && rl.re.Match(p.text)
		case kindRawbody:
			hit = raw.mayMatch(rl.pre) && rl.re.Match(p.raw)
		case kindHeader:
			matched := false
			for _, v := range hv.get(&p.header, rl.field) {
				if rl.re.MatchString(v) {
					matched = true
					break
				}
			}
			hit = matched != rl.negate
		}
		if hit {
			r.add(rl.Name, rl.Score, rl.kind)
		}
	}
	return r, nil
}

// headerValues decodes each header field once per message (RFC 2047), for
// the rules that look at it.
type headerValues struct {
	m map[string][]string
}

func (hv *headerValues) get(h *textproto.Header, field string) []string {
	key := nettextproto.CanonicalMIMEHeaderKey(field)
	if field == "ALL" {
		key = "ALL"
	}
	if v, ok := hv.m[key]; ok {
		return v
	}
	if hv.m == nil {
		hv.m = map[string][]string{}
	}
	var dec mime.WordDecoder
	var vals []string
	if key == "ALL" {
		var b strings.Builder
		for f := h.Fields(); f.Next(); {
			b.WriteString(f.Key())
			b.WriteString(": ")
			b.WriteString(decodeWords(&dec, f.Value()))
			b.WriteByte('\n')
		}
		vals = []string{b.String()}
	} else {
		for f := h.FieldsByKey(key); f.Next(); {
			vals = append(vals, decodeWords(&dec, f.Value()))
		}
	}
	hv.m[key] = vals
	return vals
}

func decodeWords(dec *mime.WordDecoder, v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if d, err := dec.DecodeHeader(v); err == nil {
		return d
	}
	return v
}
