package scanner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"

	message "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// The walker parses a message once and records everything the checks need:
// the top-level header, the pattern hits over the raw and the decoded bytes,
// attachment names and types, archive entries, malformations, and bounded
// copies of the text and the raw prefix for the rules. go-message's
// Entity.Walk has no depth or part limit (MIME bombs), so the recursion is
// ours and counts; go-message's textproto does the header and multipart
// framing.

const (
	maxRuleText       = 1 << 20 // decoded text the body rules see
	maxRuleRaw        = 1 << 20 // raw prefix the rawbody rules see
	maxArchiveNesting = 4       // zip in zip in ...
	maxNameLen        = 255     // file names are kept by their tail: the extension is there
	maxListed         = 8       // names kept per finding for the details
	sniffLen          = 512     // leading decoded bytes used to recognise content
	readBufLen        = 32 << 10
)

// Patterns of the standard test messages. Both are 68 bytes.
var (
	patternGTUBE = []byte("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")
	patternEICAR = []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)
)

const (
	patGTUBE uint8 = 1 << iota
	patEICAR
	patternMaxLen = 68
)

type walkLimits struct {
	maxDepth        int
	maxParts        int
	maxEntries      int
	maxArchiveBytes int64
	scanArchives    bool
	wantText        bool // collect decoded text (there are body rules)
	wantRaw         bool // collect the raw prefix (there are rawbody rules)
}

// location says where a pattern was found.
type location struct {
	part  int    // MIME entity number, 1 = the message itself; 0 = raw bytes
	entry string // archive entry, "" outside archives
}

func (l location) String() string {
	switch {
	case l.part == 0:
		return "raw message"
	case l.entry != "":
		return "MIME part " + strconv.Itoa(l.part) + ", archive entry " + cleanDetail(l.entry)
	}
	return "MIME part " + strconv.Itoa(l.part)
}

// leaf is one MIME body part that is not a container.
type leaf struct {
	part  int
	names []string // file names it claims (Content-Disposition, Content-Type)
	ctype string   // declared media type, lower case
	exe   bool     // content is a PE executable whatever it claims
}

// entry is one file inside a zip archive.
type entry struct {
	name      string
	container string
	exe       bool
	encrypted bool
}

// parsed is what one walk found.
type parsed struct {
	msg    *Message
	header textproto.Header
	size   int64
	raw    []byte // raw prefix, only with wantRaw
	text   []byte // decoded text parts, only with wantText

	rawFound uint8 // patterns in the raw bytes
	found    uint8 // patterns in decoded content
	rawWhere [2]location
	where    [2]location

	leaves  []leaf
	entries []entry

	parts        int // MIME entities walked
	depth        int // deepest nesting walked
	malformed    []string
	tooDeep      bool
	tooManyParts bool

	archiveEntries int
	archiveBytes   int64 // uncompressed bytes inspected
	archiveLimit   []string
	archiveBad     []string
}

// scratch holds the buffers one worker reuses from message to message.
type scratch struct {
	br   *bufio.Reader
	buf  []byte
	head []byte
	zip  chunks
	raw  []byte
	text []byte
	free [][]byte // decoder buffers
}

func newScratch() *scratch {
	return &scratch{
		br:   bufio.NewReaderSize(nil, 16<<10),
		buf:  make([]byte, readBufLen),
		head: make([]byte, sniffLen),
	}
}

func (sc *scratch) getBuf() []byte {
	if n := len(sc.free); n > 0 {
		b := sc.free[n-1]
		sc.free = sc.free[:n-1]
		return b
	}
	return make([]byte, 8<<10)
}

func (sc *scratch) putBuf(b []byte) { sc.free = append(sc.free, b) }

// release drops what one unusual message grew, so that an idle worker does
// not keep tens of megabytes.
func (sc *scratch) release() {
	sc.zip.reset(4)
	sc.br.Reset(nil)
}

// matcher finds the fixed patterns in a stream fed in chunks of any size.
type matcher struct {
	want  uint8
	found *uint8
	where *[2]location
	cur   location
	tail  [patternMaxLen - 1]byte
	tailN int
	win   [2 * patternMaxLen]byte
}

// begin starts a new stream: nothing carries over from the previous one.
func (m *matcher) begin(at location, want uint8) {
	m.cur, m.want, m.tailN = at, want, 0
}

func (m *matcher) Write(p []byte) (int, error) {
	m.feed(p)
	return len(p), nil
}

func (m *matcher) feed(p []byte) {
	pending := m.want &^ *m.found
	if pending == 0 || len(p) == 0 {
		return
	}
	if m.tailN > 0 {
		n := copy(m.win[:], m.tail[:m.tailN])
		n += copy(m.win[n:], p[:min(len(p), patternMaxLen-1)])
		m.search(m.win[:n], pending)
		pending = m.want &^ *m.found
	}
	m.search(p, pending)
	if len(p) >= len(m.tail) {
		m.tailN = copy(m.tail[:], p[len(p)-len(m.tail):])
	} else {
		keep := min(m.tailN, len(m.tail)-len(p))
		copy(m.tail[:], m.tail[m.tailN-keep:m.tailN])
		m.tailN = keep + copy(m.tail[keep:], p)
	}
}

// containsLong is bytes.Contains for the 68-byte test patterns: the
// standard library falls back to Rabin-Karp above 63 bytes, so a 16-byte
// prefix is found with the vectorised search and the rest compared.
func containsLong(b, pat []byte) bool {
	anchor := pat[:16]
	for len(b) >= len(pat) {
		i := bytes.Index(b, anchor)
		if i < 0 || len(b)-i < len(pat) {
			return false
		}
		if bytes.Equal(b[i:i+len(pat)], pat) {
			return true
		}
		b = b[i+1:]
	}
	return false
}

func (m *matcher) search(b []byte, pending uint8) {
	if pending&patGTUBE != 0 && containsLong(b, patternGTUBE) {
		*m.found |= patGTUBE
		m.where[0] = m.cur
	}
	if pending&patEICAR != 0 && containsLong(b, patternEICAR) {
		*m.found |= patEICAR
		m.where[1] = m.cur
	}
}

// rawSink sees every raw byte once, through a TeeReader under the parser.
type rawSink struct {
	m    matcher
	n    int64
	keep bool
	raw  *[]byte
}

func (s *rawSink) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	s.m.feed(p)
	if s.keep {
		if room := maxRuleRaw - len(*s.raw); room > 0 {
			*s.raw = append(*s.raw, p[:min(room, len(p))]...)
		}
	}
	return len(p), nil
}

// errReader remembers a read error of the message store, which must fail
// the scan rather than look like a malformed message.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

type walker struct {
	ctx    context.Context
	lim    walkLimits
	sc     *scratch
	p      *parsed
	dec    matcher
	budget int64 // uncompressed archive bytes still allowed
	stop   bool  // part limit reached
}

// walk parses the raw message r. Malformations are recorded, never
// returned: the only errors are the context's and the store's.
func walk(ctx context.Context, r io.Reader, lim walkLimits, sc *scratch, p *parsed) error {
	src := &errReader{r: r}
	sc.raw = sc.raw[:0]
	sc.text = sc.text[:0]
	sink := &rawSink{keep: lim.wantRaw, raw: &sc.raw}
	sink.m.found, sink.m.where = &p.rawFound, &p.rawWhere
	sink.m.begin(location{}, patGTUBE|patEICAR)
	tee := io.TeeReader(src, sink)

	w := &walker{ctx: ctx, lim: lim, sc: sc, p: p, budget: lim.maxArchiveBytes}
	w.dec.found, w.dec.where = &p.found, &p.where
	br := sc.br
	br.Reset(tee)
	err := w.message(br)
	if err == nil {
		// Whatever the parser did not reach (past a limit, after a broken
		// boundary) still goes through the raw patterns.
		for {
			if _, rerr := tee.Read(sc.buf); rerr != nil {
				break
			}
		}
	}
	if src.err != nil {
		return fmt.Errorf("read message: %w", src.err)
	}
	if err != nil {
		return err
	}
	p.size = sink.n
	if lim.wantRaw {
		p.raw = sc.raw
	}
	if lim.wantText {
		p.text = sc.text
	}
	p.archiveBytes = lim.maxArchiveBytes - w.budget
	return nil
}

func (w *walker) malformed(format string, a ...any) {
	if len(w.p.malformed) < maxListed {
		w.p.malformed = append(w.p.malformed, cleanDetail(fmt.Sprintf(format, a...)))
	}
}

func (w *walker) archiveLimit(format string, a ...any) {
	if len(w.p.archiveLimit) < maxListed {
		w.p.archiveLimit = append(w.p.archiveLimit, cleanDetail(fmt.Sprintf(format, a...)))
	}
}

func (w *walker) archiveBad(format string, a ...any) {
	if len(w.p.archiveBad) < maxListed {
		w.p.archiveBad = append(w.p.archiveBad, cleanDetail(fmt.Sprintf(format, a...)))
	}
}

// enter counts one more MIME entity; false when the part limit is reached.
func (w *walker) enter(depth int) bool {
	if w.p.parts >= w.lim.maxParts {
		w.p.tooManyParts = true
		w.stop = true
		return false
	}
	w.p.parts++
	w.p.depth = max(w.p.depth, depth)
	return true
}

func (w *walker) message(br *bufio.Reader) error {
	if !w.enter(0) {
		return nil
	}
	h, err := textproto.ReadHeader(br)
	if err != nil {
		w.malformed("header: %v", err)
	}
	w.p.header = h
	return w.entity(h, br, 0, false)
}

// entity walks the body r of an entity with header h at the given depth.
func (w *walker) entity(h textproto.Header, r io.Reader, depth int, inDigest bool) error {
	part := w.p.parts
	mt, params := w.contentType(h, inDigest, part)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			w.malformed("part %d: %s without boundary", part, mt)
			return w.leaf(h, mt, params, r, part)
		}
		if depth+1 > w.lim.maxDepth {
			w.p.tooDeep = true
			return nil
		}
		mr := textproto.NewMultipartReader(r, boundary)
		digest := mt == "multipart/digest"
		for {
			if err := w.ctx.Err(); err != nil {
				return err
			}
			child, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				w.malformed("part %d: %v", part, err)
				return nil
			}
			if !w.enter(depth + 1) {
				return nil
			}
			if err := w.entity(child.Header, child, depth+1, digest); err != nil {
				return err
			}
			if w.stop {
				return nil
			}
		}
	case mt == "message/rfc822" || mt == "message/global":
		// A forwarded message is walked like the outer one: its attachments
		// reach the recipient just the same.
		if depth+1 > w.lim.maxDepth {
			w.p.tooDeep = true
			return nil
		}
		if !w.enter(depth + 1) {
			return nil
		}
		body, done := w.decoder(h, r, part)
		defer done()
		br := bufio.NewReaderSize(body, 4096)
		inner, err := textproto.ReadHeader(br)
		if err != nil {
			w.malformed("part %d: header: %v", w.p.parts, err)
		}
		return w.entity(inner, br, depth+1, false)
	}
	return w.leaf(h, mt, params, r, part)
}

// contentType is the lower-case media type and parameters, per RFC 2045 §5.2
// text/plain when absent (message/rfc822 inside a digest, RFC 2046 §5.1.5).
func (w *walker) contentType(h textproto.Header, inDigest bool, part int) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		if inDigest {
			return "message/rfc822", nil
		}
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		w.malformed("part %d: content-type: %v", part, err)
		if mt == "" {
			mt, _, _ = strings.Cut(v, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
		}
		params = lenientParams(v)
		if !strings.Contains(mt, "/") {
			mt = "text/plain"
		}
	}
	return mt, params
}

// decoder undoes the Content-Transfer-Encoding; done returns its buffer.
func (w *walker) decoder(h textproto.Header, r io.Reader, part int) (io.Reader, func()) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	var qp bool
	switch cte {
	case "", "7bit", "8bit", "binary":
		return r, func() {}
	case "quoted-printable":
		qp = true
	case "base64":
	default:
		w.malformed("part %d: unknown transfer encoding %q", part, cte)
		return r, func() {}
	}
	buf := w.sc.getBuf()
	d := &decodingReader{}
	d.reset(r, qp, buf)
	return d, func() { w.sc.putBuf(buf) }
}

func (w *walker) leaf(h textproto.Header, mt string, params map[string]string, r io.Reader, part int) error {
	lf := leaf{part: part, ctype: mt, names: attachmentNames(h, params)}
	text := mt == "text/plain" || mt == "text/html"
	var latin1 bool
	if text {
		var known bool
		latin1, known = charsetKind(params["charset"])
		if !known {
			w.malformed("part %d: unknown charset %q", part, params["charset"])
		}
	}
	want := patEICAR
	if text {
		want |= patGTUBE
	}
	collect := text && w.lim.wantText
	if collect && len(w.sc.text) > 0 && len(w.sc.text) < maxRuleText {
		w.sc.text = append(w.sc.text, '\n')
	}

	body, done := w.decoder(h, r, part)
	defer done()
	w.dec.begin(location{part: part}, want)

	head := w.sc.head
	n, err := io.ReadFull(body, head)
	head = head[:n]
	eof := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !eof {
		w.malformed("part %d: %v", part, err)
		return nil
	}
	lf.exe = isPE(head)
	zipped := w.lim.scanArchives && (isZip(head) || declaredZip(mt, lf.names))
	zipOver := false
	if zipped {
		w.sc.zip.reset(4)
	}
	chunk := head
	for {
		w.dec.feed(chunk)
		if collect {
			w.sc.text = appendText(w.sc.text, chunk, latin1, maxRuleText)
		}
		if zipped && !zipOver {
			if w.sc.zip.size+int64(len(chunk)) > w.lim.maxArchiveBytes {
				// zip is read from its end, so it is kept whole; one bigger
				// than the budget is only pattern-matched, not opened.
				zipOver = true
				w.archiveLimit("part %d: archive larger than %d bytes", part, w.lim.maxArchiveBytes)
			} else {
				w.sc.zip.write(chunk)
			}
		}
		if eof {
			break
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n, err := body.Read(w.sc.buf)
		chunk = w.sc.buf[:n]
		if err == io.EOF {
			eof = true
		} else if err != nil {
			w.malformed("part %d: %v", part, err)
			eof = true
		}
	}
	if zipped && !zipOver {
		if err := w.zip(&w.sc.zip, firstName(lf.names, part), part, 1); err != nil {
			return err
		}
	}
	w.p.leaves = append(w.p.leaves, lf)
	return nil
}

func firstName(names []string, part int) string {
	if len(names) > 0 {
		return names[0]
	}
	return "part " + strconv.Itoa(part)
}

func isZip(b []byte) bool {
	return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06"))
}

func declaredZip(mt string, names []string) bool {
	switch mt {
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return true
	}
	for _, n := range names {
		if strings.HasSuffix(strings.ToLower(n), ".zip") {
			return true
		}
	}
	return false
}

// isPE recognises a Windows executable by its MZ header pointing at a PE
// signature, so a renamed or mislabelled program is still one.
func isPE(b []byte) bool {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return false
	}
	off := int(b[0x3c]) | int(b[0x3d])<<8 | int(b[0x3e])<<16 | int(b[0x3f])<<24
	return off >= 0x40 && off <= len(b)-4 && string(b[off:off+4]) == "PE\x00\x00"
}

// attachmentNames collects every file name a part claims. go-message decodes
// RFC 2231 and RFC 2047, but the standard library drops RFC 2231 values in
// charsets other than UTF-8 and ASCII and gives up on a broken parameter
// list; a client shows such names anyway, so a lenient reading of the raw
// parameters is checked as well.
func attachmentNames(h textproto.Header, ctParams map[string]string) []string {
	var names []string
	add := func(n string) {
		n = strings.TrimSpace(n)
		if n == "" {
			return
		}
		if len(n) > maxNameLen {
			n = n[len(n)-maxNameLen:]
		}
		for _, have := range names {
			if have == n {
				return
			}
		}
		names = append(names, n)
	}
	mh := message.Header{Header: h}
	if cd := h.Get("Content-Disposition"); cd != "" {
		if _, params, err := mh.ContentDisposition(); err == nil {
			add(params["filename"])
			add(params["name"])
		}
		if containsFold(cd, "name") {
			lp := lenientParams(cd)
			add(lp["filename"])
			add(lp["name"])
		}
	}
	if ct := h.Get("Content-Type"); ct != "" && containsFold(ct, "name") {
		if _, params, err := mh.ContentType(); err == nil {
			add(params["name"])
		}
		add(ctParams["name"])
		add(lenientParams(ct)["name"])
	}
	return names
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// lenientParams reads "; key=value" parameters as forgivingly as mail
// clients do: RFC 2231 continuations (name*0*=...) joined in order, any
// charset's percent-encoding undone byte for byte, RFC 2047 words decoded.
func lenientParams(v string) map[string]string {
	type seg struct {
		n   int
		val string
	}
	segs := map[string][]seg{}
	latin := map[string]bool{}
	_, rest, _ := strings.Cut(v, ";")
	for rest != "" {
		var item string
		item, rest = cutParam(rest)
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		extended := strings.HasSuffix(key, "*")
		key = strings.TrimSuffix(key, "*")
		base, idx, hasIdx := strings.Cut(key, "*")
		n := 0
		if hasIdx {
			var err error
			if n, err = strconv.Atoi(idx); err != nil || n < 0 || n > 1000 {
				continue
			}
		}
		if extended {
			if n == 0 {
				if cs, rest, ok := strings.Cut(val, "'"); ok {
					if _, rest, ok = strings.Cut(rest, "'"); ok {
						val = rest
						if latin1, _ := charsetKind(cs); latin1 {
							latin[base] = true
						}
					}
				}
			}
			val = percentDecode(val)
			if latin[base] {
				val = string(appendText(nil, []byte(val), true, len(val)))
			}
		}
		segs[base] = append(segs[base], seg{n, val})
	}
	out := make(map[string]string, len(segs))
	var dec mime.WordDecoder
	for k, ss := range segs {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		var b strings.Builder
		for _, s := range ss {
			b.WriteString(s.val)
		}
		val := b.String()
		if strings.Contains(val, "=?") {
			if d, err := dec.DecodeHeader(val); err == nil {
				val = d
			}
		}
		out[k] = val
	}
	return out
}

// cutParam splits off the first parameter, honouring quotes.
func cutParam(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) < 16 && unhex(s[i+2]) < 16 {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}
