package scanner

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mxgate/mxgate/spool"
)

func TestPatternLengths(t *testing.T) {
	if len(patternGTUBE) != patternMaxLen || len(patternEICAR) != patternMaxLen {
		t.Fatalf("pattern lengths %d %d, want %d", len(patternGTUBE), len(patternEICAR), patternMaxLen)
	}
}

func TestDecoders(t *testing.T) {
	payload := []byte(eicarText + "\x00\xff binary\r\n= tail")
	b64 := base64.StdEncoding.EncodeToString(payload)
	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	qw.Write(bytes.Repeat(payload, 3))
	qw.Close()

	tests := []struct {
		name string
		qp   bool
		in   string
		want string
	}{
		{"base64 wrapped", false, b64[:20] + "\r\n" + b64[20:], string(payload)},
		{"base64 with garbage", false, "  " + b64[:8] + "!*\t" + b64[8:] + "\r\n\r\n", string(payload)},
		{"base64 unpadded", false, strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("ab")), "="), "ab"},
		{"base64 concatenated blocks", false, base64.StdEncoding.EncodeToString([]byte("a")) + base64.StdEncoding.EncodeToString([]byte("bc")), "abc"},
		{"base64 url alphabet", false, base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff}), "\xfb\xff"},
		{"qp round trip", true, qp.String(), string(bytes.Repeat(payload, 3))},
		{"qp soft breaks", true, "ab=\r\ncd= \t\r\nef=\ngh", "abcdefgh"},
		{"qp invalid escapes pass through", true, "a=ZZb=4x=\x00=", "a=ZZb=4x=\x00="},
		{"qp lower-case hex", true, "=e9=E9", "\xe9\xe9"},
		{"qp cr not followed by lf", true, "a=\rb", "a=b"},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tc := range tests {
		for rn, wrap := range readers {
			t.Run(tc.name+"/"+rn, func(t *testing.T) {
				d := &decodingReader{}
				d.reset(wrap(strings.NewReader(tc.in)), tc.qp, make([]byte, 64))
				got, err := io.ReadAll(iotest.OneByteReader(d))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
	}
}

func TestMatcherAcrossChunks(t *testing.T) {
	data := []byte(strings.Repeat("x", 100) + eicarText + strings.Repeat("y", 10) + gtubeText)
	for size := 1; size <= len(data); size += 7 {
		var found uint8
		var where [2]location
		m := matcher{found: &found, where: &where}
		m.begin(location{part: 2}, patGTUBE|patEICAR)
		for i := 0; i < len(data); i += size {
			m.feed(data[i:min(i+size, len(data))])
		}
		if found != patGTUBE|patEICAR || where[1].part != 2 {
			t.Fatalf("chunk size %d: found %b", size, found)
		}
	}
	// A new stream does not carry over the end of the previous one.
	var found uint8
	var where [2]location
	m := matcher{found: &found, where: &where}
	m.begin(location{}, patEICAR)
	m.feed([]byte(eicarText[:30]))
	m.begin(location{}, patEICAR)
	m.feed([]byte(eicarText[30:]))
	if found != 0 {
		t.Error("pattern matched across two streams")
	}
}

func walkBytes(t testing.TB, raw []byte, lim walkLimits) *parsed {
	t.Helper()
	p := &parsed{msg: &Message{}}
	if err := walk(context.Background(), bytes.NewReader(raw), lim, newScratch(), p); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return p
}

// defaultLimits are the limits an engine derives from the default options,
// collecting the text and the raw prefix as body and rawbody rules would
// make it.
func defaultLimits() walkLimits {
	o, _ := DefaultOptions().normalize()
	lim := o.walkLimits(nil)
	lim.wantText, lim.wantRaw = true, true
	return lim
}

func TestWalkLimits(t *testing.T) {
	lim := defaultLimits()
	lim.maxParts, lim.maxDepth = 50, 4
	ps := make([]part, 200)
	for i := range ps {
		ps[i] = textPart("p")
	}
	p := walkBytes(t, []byte(multipartMsg(ps...)), lim)
	if p.parts != 50 || !p.tooManyParts {
		t.Errorf("parts %d, tooManyParts %v", p.parts, p.tooManyParts)
	}

	d := textPart("leaf")
	for i := range 10 {
		d = nestedPart("d"+strings.Repeat("d", i), d)
	}
	p = walkBytes(t, []byte(multipartMsg(d)), lim)
	if p.depth != 4 || !p.tooDeep {
		t.Errorf("depth %d, tooDeep %v", p.depth, p.tooDeep)
	}

	// message/rfc822 nesting counts as well.
	msg := textMsg("innermost")
	for range 10 {
		msg = crlf(stdHeader + "Content-Type: message/rfc822\n\n" + msg)
	}
	p = walkBytes(t, []byte(msg), lim)
	if p.depth != 4 || !p.tooDeep {
		t.Errorf("rfc822: depth %d, tooDeep %v", p.depth, p.tooDeep)
	}
}

func TestWalkArchiveBudget(t *testing.T) {
	lim := defaultLimits()
	lim.maxArchiveBytes = 1 << 20
	// 16 MiB of zeros compress to ~16 KiB: the walk must stop at the budget.
	z := zipOf(t, zipFile{name: "a.txt", data: make([]byte, 16<<20)}, zipFile{name: "b.txt", data: make([]byte, 16<<20)})
	raw := multipartMsg(b64Part("application/zip", `attachment; filename="bomb.zip"`, z))
	p := walkBytes(t, []byte(raw), lim)
	if p.archiveBytes > lim.maxArchiveBytes {
		t.Errorf("inspected %d bytes, budget %d", p.archiveBytes, lim.maxArchiveBytes)
	}
	if len(p.archiveLimit) == 0 {
		t.Error("limit not reported")
	}
}

func TestWalkCollectsTextAndRaw(t *testing.T) {
	raw := multipartMsg(textPart("first"), qpPart("text/html; charset=iso-8859-1", "<b>caf\xe9</b>"),
		b64Part("application/pdf", `attachment; filename="a.pdf"`, []byte("%PDF not text")))
	p := walkBytes(t, []byte(raw), defaultLimits())
	if got := string(p.text); got != "first\n<b>café</b>" {
		t.Errorf("text %q", got)
	}
	if !bytes.Equal(p.raw, []byte(raw)) || p.size != int64(len(raw)) {
		t.Errorf("raw prefix %d bytes of %d, size %d", len(p.raw), len(raw), p.size)
	}
	if len(p.leaves) != 3 || p.leaves[2].names[0] != "a.pdf" || p.leaves[2].ctype != "application/pdf" {
		t.Errorf("leaves %+v", p.leaves)
	}
}

func TestLenientParams(t *testing.T) {
	tests := []struct{ in, key, want string }{
		{`attachment; filename="a;b.exe"`, "filename", "a;b.exe"},
		{`attachment; filename*=utf-8''%E2%82%AC.exe`, "filename", "€.exe"},
		{`attachment; filename*1="b.exe"; filename*0="a"`, "filename", "ab.exe"},
		{`attachment; FILENAME = "x.js" ; size=3`, "filename", "x.js"},
		{`attachment; filename="=?utf-8?q?r=C3=A9.exe?="`, "filename", "ré.exe"},
		{`application/octet-stream; name*0*=iso-8859-1''%E9; name*1=.scr`, "name", "é.scr"},
		{`attachment; filename`, "filename", ""},
	}
	for _, tc := range tests {
		if got := lenientParams(tc.in)[tc.key]; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	o, _ := DefaultOptions().normalize()
	pol := newAttachPolicy(o.Attachments)
	tests := []struct {
		name            string
		blocked, double bool
	}{
		{"report.pdf", false, false},
		{"setup.exe", true, false},
		{"SETUP.EXE", true, false},
		{"evil.exe. . ", true, false},
		{`C:\Users\x\evil.scr`, true, false},
		{"invoice.pdf.exe", true, true},
		{"invoice.pdf .exe", true, true},
		{"photo.jpeg.js", true, true},
		{"archive.tar.gz", false, false},
		{"v1.2.exe", true, false},
		{"noext", false, false},
		{"exe", false, false},
		{"a.application", true, false},
	}
	for _, tc := range tests {
		b, d := pol.checkName(tc.name)
		if b != tc.blocked || d != tc.double {
			t.Errorf("%q: blocked %v double %v, want %v %v", tc.name, b, d, tc.blocked, tc.double)
		}
	}
}

func TestIsPE(t *testing.T) {
	if !isPE(peFile()) {
		t.Error("PE not recognised")
	}
	for _, b := range [][]byte{nil, []byte("MZ"), []byte("MZ" + strings.Repeat(" ", 100)), []byte("hello")} {
		if isPE(b) {
			t.Errorf("%q taken for PE", b)
		}
	}
}

func TestSpooledToFile(t *testing.T) {
	raw := multipartMsg(textPart(strings.Repeat("filler ", 2000)),
		b64Part("application/octet-stream", `attachment; filename="e.txt"`, []byte(eicarText)))
	w := spool.NewWriter(t.TempDir(), 1024)
	if _, err := w.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	buf := w.Finish()
	defer buf.Close()
	v := scanWith(t, DefaultOptions(), &Message{ID: "F", Body: buf})
	if v.Class != classVirus {
		t.Errorf("got %s", describe(v))
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	copy(p, bytes.Repeat([]byte("a"), n))
	f.n -= n
	return n, nil
}

func TestStoreErrorFailsTheScan(t *testing.T) {
	p := &parsed{}
	err := walk(context.Background(), &failingReader{n: 10}, defaultLimits(), newScratch(), p)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error %v", err)
	}
}

func TestWalkCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ps := make([]part, 20)
	for i := range ps {
		ps[i] = textPart("p")
	}
	err := walk(ctx, strings.NewReader(multipartMsg(ps...)), defaultLimits(), newScratch(), &parsed{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

func TestChunks(t *testing.T) {
	var c chunks
	data := bytes.Repeat([]byte("0123456789PK\x01\x02"), chunkLen/7) // straddles pieces
	for i := 0; i < len(data); i += 1000 {
		c.write(data[i:min(i+1000, len(data))])
	}
	if c.size != int64(len(data)) || c.count(sigCentral) != bytes.Count(data, sigCentral) {
		t.Fatalf("size %d count %d, want %d %d", c.size, c.count(sigCentral), len(data), bytes.Count(data, sigCentral))
	}
	got := make([]byte, len(data))
	if n, err := c.ReadAt(got, 0); n != len(data) || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt whole: %d %v", n, err)
	}
	off := int64(chunkLen - 5)
	if n, _ := c.ReadAt(got[:10], off); n != 10 || !bytes.Equal(got[:10], data[off:off+10]) {
		t.Fatal("ReadAt across a piece boundary")
	}
	if _, err := c.ReadAt(got[:10], c.size-5); err != io.EOF {
		t.Fatalf("short read: %v", err)
	}
	c.reset(1)
	c.write([]byte("again"))
	if c.size != 5 || len(c.bufs) != 1 {
		t.Fatalf("after reset: %d bytes in %d pieces", c.size, len(c.bufs))
	}
}
