package scanner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"

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
	maxArchiveNesting = 4       // zip in gzip in zip in ...
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

// parsed is what the walks of one message found. A message is walked once
// per reading (see reading); the findings of every reading are merged here.
type parsed struct {
	msg    *Message
	header textproto.Header // top-level header of the first reading
	size   int64
	raw    []byte // raw prefix, only with wantRaw
	text   []byte // decoded text parts, only with wantText

	rawFound uint8 // patterns in the raw bytes
	found    uint8 // patterns in decoded content
	rawWhere [2]location
	where    [2]location

	leaves  []leaf
	entries []entry

	parts        int // MIME entities walked, most of any reading
	depth        int // deepest nesting walked
	malformed    []string
	tooDeep      bool
	tooManyParts bool

	readings        int     // walks made
	ambiguity       reading // what the message leaves to the reader's choice
	ambiguous       []string
	tooManyReadings bool

	// Archive and embedded-file content is counted across all readings:
	// one budget per message, however often it is walked.
	archiveEntries int
	archiveBytes   int64 // uncompressed bytes inspected
	budget         int64 // of maxArchiveBytes, what is left
	archiveLimits  limit // which archive limits were hit
	archiveLimit   []string
	archiveBad     []string
}

// scratch holds the buffers one worker reuses from message to message.
type scratch struct {
	br   *bufio.Reader
	buf  []byte
	head []byte
	zip  chunks
	uu   chunks
	hdr  []byte // a header as the skipping reading keeps it
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
	sc.uu.reset(1)
	if cap(sc.hdr) > 64<<10 {
		sc.hdr = nil
	}
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

// reading is one way of resolving what RFC 2045 leaves no room for but
// mail clients resolve differently: a field given twice, a parameter given
// twice, a line in a header that is no field, a multipart body with a
// transfer encoding. An attacker who knows the gateway reads the first
// Content-Type and the client the last can hide anything in between, so a
// message that holds such a choice is walked once per combination of the
// choices it holds, and what any reading finds counts.
type reading uint8

const (
	readLastType      reading = 1 << iota // the last Content-Type field, not the first
	readLastBoundary                      // the last boundary parameter, not the first
	readLastEncoding                      // the last Content-Transfer-Encoding; a multipart body with an encoding decoded first
	readSkipBadHeader                     // a header line without a colon skipped rather than ending the header

	allReadings = 1 << iota
)

// maxReadings bounds the walks of one message. Four independent choices
// would need 16; a message that needs more than this many is not scanned
// further and counts as over a limit.
const maxReadings = 8

// limit names a limit of the walk; what lies beyond one was not looked at.
type limit uint16

const (
	limitArchiveBytes   limit = 1 << iota // uncompressed bytes per message
	limitArchiveEntries                   // entries per message
	limitArchiveNesting                   // archives in archives
	limitArchiveSize                      // an archive too big to be opened
	limitArchiveRecords                   // more directory records than entries allowed
	limitArchiveMethod                    // a compression method not supported
)

type walker struct {
	ctx context.Context
	lim walkLimits
	sc  *scratch
	p   *parsed
	rd  reading
	dec matcher // the decoded content of MIME leaves

	parts int  // MIME entities of this reading
	stop  bool // part limit reached
}

// walk parses the raw message r, once per reading the message calls for
// (r is sought back to its start for each further one). Malformations and
// limits are recorded, never returned: the only errors are the context's
// and the store's.
func walk(ctx context.Context, r io.Reader, lim walkLimits, sc *scratch, p *parsed) error {
	sc.raw = sc.raw[:0]
	sc.text = sc.text[:0]
	p.budget = lim.maxArchiveBytes
	var done [allReadings]bool
	for rd := reading(0); ; {
		if p.readings > 0 {
			s, ok := r.(io.Seeker)
			if !ok {
				return fmt.Errorf("read message again: %T cannot seek", r)
			}
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("read message again: %w", err)
			}
		}
		if err := walkOnce(ctx, r, rd, lim, sc, p); err != nil {
			return err
		}
		done[rd] = true
		p.readings++
		next := reading(0)
		for next < allReadings && (done[next] || next&^p.ambiguity != 0) {
			next++
		}
		if next == allReadings {
			break
		}
		if p.readings >= maxReadings {
			p.tooManyReadings = true
			break
		}
		rd = next
	}
	if lim.wantRaw {
		p.raw = sc.raw
	}
	if lim.wantText {
		p.text = sc.text
	}
	p.archiveBytes = lim.maxArchiveBytes - p.budget
	return nil
}

// walkOnce is one reading. The first one also runs every raw byte through
// the patterns and keeps the raw prefix.
func walkOnce(ctx context.Context, r io.Reader, rd reading, lim walkLimits, sc *scratch, p *parsed) error {
	src := &errReader{r: r}
	first := p.readings == 0
	var in io.Reader = src
	var sink *rawSink
	if first {
		sink = &rawSink{keep: lim.wantRaw, raw: &sc.raw}
		sink.m.found, sink.m.where = &p.rawFound, &p.rawWhere
		sink.m.begin(location{}, patGTUBE|patEICAR)
		in = io.TeeReader(src, sink)
	}
	w := &walker{ctx: ctx, lim: lim, sc: sc, p: p, rd: rd}
	w.dec.found, w.dec.where = &p.found, &p.where
	br := sc.br
	br.Reset(in)
	err := w.message(br)
	if err == nil && first {
		// Whatever the parser did not reach (past a limit, after a broken
		// boundary) still goes through the raw patterns.
		for {
			if _, rerr := in.Read(sc.buf); rerr != nil {
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
	if first {
		p.size = sink.n
	}
	p.parts = max(p.parts, w.parts)
	return nil
}

// addDetail appends a detail once, up to maxListed of them.
func addDetail(list *[]string, format string, a ...any) {
	if len(*list) >= maxListed {
		return
	}
	d := cleanDetail(fmt.Sprintf(format, a...))
	for _, have := range *list {
		if have == d {
			return
		}
	}
	*list = append(*list, d)
}

func (w *walker) malformed(format string, a ...any) { addDetail(&w.p.malformed, format, a...) }

func (w *walker) archiveLimit(l limit, format string, a ...any) {
	w.p.archiveLimits |= l
	addDetail(&w.p.archiveLimit, format, a...)
}

func (w *walker) archiveBad(format string, a ...any) { addDetail(&w.p.archiveBad, format, a...) }

// ambiguous records a choice the message leaves to the reader; choice is
// the reading that takes the other branch (0: every branch is already
// scanned in each reading, e.g. file names from every field).
func (w *walker) ambiguous(choice reading, format string, a ...any) {
	w.p.ambiguity |= choice
	addDetail(&w.p.ambiguous, format, a...)
}

// enter counts one more MIME entity; false when the part limit is reached.
func (w *walker) enter(depth int) bool {
	if w.parts >= w.lim.maxParts {
		w.p.tooManyParts = true
		w.stop = true
		return false
	}
	w.parts++
	w.p.depth = max(w.p.depth, depth)
	return true
}

func (w *walker) message(br *bufio.Reader) error {
	if !w.enter(0) {
		return nil
	}
	h := w.header(br, 1)
	if w.p.readings == 0 {
		w.p.header = h
	}
	return w.entity(h, br, 0, false)
}

// entity walks the body r of an entity with header h at the given depth.
func (w *walker) entity(h textproto.Header, r io.Reader, depth int, inDigest bool) error {
	part := w.parts
	ct := w.contentType(h, inDigest, part)
	switch {
	case strings.HasPrefix(ct.mt, "multipart/"):
		if ct.boundary == "" {
			w.malformed("part %d: %s without boundary", part, ct.mt)
			return w.leaf(h, ct, r, part)
		}
		if depth+1 > w.lim.maxDepth {
			w.p.tooDeep = true
			return nil
		}
		body := r
		if enc := w.multipartEncoding(h, part); enc != "" && w.rd&readLastEncoding != 0 {
			d, done := w.decoderFor(enc, r)
			defer done()
			body = d
		}
		mr := textproto.NewMultipartReader(body, ct.boundary)
		digest := ct.mt == "multipart/digest"
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
	case ct.mt == "message/rfc822" || ct.mt == "message/global":
		// A forwarded message is walked like the outer one: its attachments
		// reach the recipient just the same.
		if depth+1 > w.lim.maxDepth {
			w.p.tooDeep = true
			return nil
		}
		if !w.enter(depth + 1) {
			return nil
		}
		body, _, done := w.decoder(h, r, part)
		defer done()
		br := bufio.NewReaderSize(body, 4096)
		inner := w.header(br, w.parts)
		return w.entity(inner, br, depth+1, false)
	}
	return w.leaf(h, ct, r, part)
}

// mediaType is an entity's Content-Type under the walk's reading.
type mediaType struct {
	mt       string            // lower case
	params   map[string]string // of the field read
	boundary string            // the boundary parameter read
}

// contentType is the lower-case media type and parameters, per RFC 2045 §5.2
// text/plain when absent (message/rfc822 inside a digest, RFC 2046 §5.1.5).
// With several fields or several boundaries, the reading picks one.
func (w *walker) contentType(h textproto.Header, inDigest bool, part int) mediaType {
	vals := h.Values("Content-Type")
	if len(vals) > 1 && !sameMediaTypes(vals) {
		w.ambiguous(readLastType, "part %d: %d different Content-Type fields", part, len(vals))
	}
	v := pick(vals, w.rd&readLastType != 0)
	if strings.TrimSpace(v) == "" {
		if inDigest {
			return mediaType{mt: "message/rfc822"}
		}
		return mediaType{mt: "text/plain"}
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
	ct := mediaType{mt: mt, params: params}
	if strings.HasPrefix(mt, "multipart/") {
		bs := boundaries(v, params)
		if len(bs) > 1 {
			w.ambiguous(readLastBoundary, "part %d: %d different boundary parameters", part, len(bs))
		}
		ct.boundary = pick(bs, w.rd&readLastBoundary != 0)
	}
	return ct
}

// sameMediaTypes reports whether several Content-Type fields agree on
// what matters to the walk: the type and the boundary.
func sameMediaTypes(vals []string) bool {
	key := func(v string) string {
		mt, params, err := mime.ParseMediaType(v)
		if err != nil {
			mt, _, _ = strings.Cut(v, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
		}
		return mt + "\x00" + strings.Join(boundaries(v, params), "\x00")
	}
	first := key(vals[0])
	for _, v := range vals[1:] {
		if key(v) != first {
			return false
		}
	}
	return true
}

// boundaries lists every distinct boundary a Content-Type value gives, in
// order: the standard library refuses a repeated parameter, and clients
// then take the first, the last, or either form of RFC 2231.
func boundaries(v string, params map[string]string) []string {
	var out []string
	add := func(b string) {
		if b != "" && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	for _, b := range paramValues(v, "boundary") {
		add(b)
	}
	if b := params["boundary"]; b != "" && !slices.Contains(out, b) {
		out = append([]string{b}, out...)
	}
	return out
}

func pick(vals []string, last bool) string {
	switch {
	case len(vals) == 0:
		return ""
	case last:
		return vals[len(vals)-1]
	}
	return vals[0]
}

// Transfer encodings the walker tells apart; "" is the identity (7bit,
// 8bit, binary or none).
const (
	encBase64 = "base64"
	encQP     = "quoted-printable"
	encUU     = "x-uuencode"
)

// normEncoding reduces a Content-Transfer-Encoding value to its token:
// lenient readers ignore quotes, comments and anything after a blank.
func normEncoding(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, `"`)
	switch v {
	case "", "7bit", "8bit", "binary":
		return ""
	case "x-uuencode", "x-uue", "uuencode", "uue":
		return encUU
	}
	return v
}

// encoding is the entity's transfer encoding under the walk's reading.
func (w *walker) encoding(h textproto.Header, part int) string {
	vals := h.Values("Content-Transfer-Encoding")
	for i := range vals {
		vals[i] = normEncoding(vals[i])
	}
	if len(vals) > 1 && slices.ContainsFunc(vals[1:], func(v string) bool { return v != vals[0] }) {
		w.ambiguous(readLastEncoding, "part %d: %d different Content-Transfer-Encoding fields", part, len(vals))
	}
	return pick(vals, w.rd&readLastEncoding != 0)
}

// multipartEncoding is a transfer encoding a multipart body claims, which
// RFC 2045 §6.4 forbids; some readers decode the body anyway. "" if none.
func (w *walker) multipartEncoding(h textproto.Header, part int) string {
	vals := h.Values("Content-Transfer-Encoding")
	for i := len(vals) - 1; i >= 0; i-- {
		switch enc := normEncoding(vals[i]); enc {
		case encBase64, encQP:
			w.ambiguous(readLastEncoding, "part %d: multipart with transfer encoding %s", part, enc)
			return enc
		}
	}
	return ""
}

// decoder undoes the Content-Transfer-Encoding under the walk's reading;
// done returns its buffer.
func (w *walker) decoder(h textproto.Header, r io.Reader, part int) (io.Reader, string, func()) {
	enc := w.encoding(h, part)
	switch enc {
	case "", encBase64, encQP, encUU:
	default:
		w.malformed("part %d: unknown transfer encoding %q", part, enc)
	}
	d, done := w.decoderFor(enc, r)
	return d, enc, done
}

func (w *walker) decoderFor(enc string, r io.Reader) (io.Reader, func()) {
	if enc != encBase64 && enc != encQP {
		// uuencode is found in the content by the leaf, like uuencoded
		// blocks in text.
		return r, func() {}
	}
	buf := w.sc.getBuf()
	d := &decodingReader{}
	d.reset(r, enc == encQP, buf)
	return d, func() { w.sc.putBuf(buf) }
}

func (w *walker) leaf(h textproto.Header, ct mediaType, r io.Reader, part int) error {
	lf := leaf{part: part, ctype: ct.mt, names: w.attachmentNames(h, part)}
	text := ct.mt == "text/plain" || ct.mt == "text/html"
	var latin1 bool
	if text {
		var known bool
		latin1, known = charsetKind(ct.params["charset"])
		if !known {
			w.malformed("part %d: unknown charset %q", part, ct.params["charset"])
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

	body, enc, done := w.decoder(h, r, part)
	defer done()
	w.dec.begin(location{part: part}, want)
	var uu *uuScanner
	if enc == encUU || strings.HasPrefix(ct.mt, "text/") {
		uu = &uuScanner{w: w, part: part, data: &w.sc.uu}
	}

	head := w.sc.head
	n, err := io.ReadFull(body, head)
	head = head[:n]
	eof := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !eof {
		w.malformed("part %d: %v", part, err)
		return nil
	}
	lf.exe = isPE(head)
	kind := archiveNone
	if w.lim.scanArchives {
		kind = sniffArchive(head, ct.mt, lf.names)
	}
	over := false
	if kind != archiveNone {
		w.sc.zip.reset(4)
	}
	container := firstName(lf.names, part)
	chunk := head
	for {
		w.dec.feed(chunk)
		if collect {
			w.sc.text = appendText(w.sc.text, chunk, latin1, maxRuleText)
		}
		if kind != archiveNone && !over {
			if w.sc.zip.size+int64(len(chunk)) > w.lim.maxArchiveBytes {
				// An archive is opened from memory (zip is read from its
				// end); one bigger than the budget is only pattern-matched.
				over = true
				w.archiveLimit(limitArchiveSize, "%s: archive larger than %d bytes, not opened", container, w.lim.maxArchiveBytes)
			} else {
				w.sc.zip.write(chunk)
			}
		}
		if uu != nil {
			if err := uu.feed(chunk); err != nil {
				return err
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
	if uu != nil {
		if err := uu.finish(); err != nil {
			return err
		}
	}
	if kind != archiveNone && !over {
		if err := w.archive(kind, &w.sc.zip, container, part, 1); err != nil {
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

// isPE recognises a Windows executable by its MZ header pointing at a PE
// signature, so a renamed or mislabelled program is still one.
func isPE(b []byte) bool {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return false
	}
	off := int(b[0x3c]) | int(b[0x3d])<<8 | int(b[0x3e])<<16 | int(b[0x3f])<<24
	return off >= 0x40 && off <= len(b)-4 && string(b[off:off+4]) == "PE\x00\x00"
}
