package scanner

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"
)

// The transfer decoders are written here rather than taken from
// encoding/base64 and mime/quotedprintable because those stop at the first
// invalid byte: one stray character in front of a payload would hide it from
// the scan while every mail client still decodes it. These never fail, decode
// in place and allocate nothing per part.

// decodeLead is the room kept in front of the input inside the buffer: bytes
// carried over from the previous read (an "=4" split from its second digit)
// are written out before the new input, and in-place decoding must never
// overtake the input it reads.
const decodeLead = 2

type decodingReader struct {
	r   io.Reader
	qp  bool // quoted-printable, else base64
	buf []byte
	lo  int
	hi  int
	err error

	acc  uint32 // base64: bits of the current quantum
	nacc int    // base64: sextets in acc

	st   uint8 // quoted-printable state
	hexc byte  // quoted-printable: first digit after "="
}

const (
	qpNormal uint8 = iota
	qpEq           // after "="
	qpHex          // after "=X"
	qpEqWS         // after "=" and blanks: a soft break if the line ends here
	qpEqCR         // after "=" [blanks] CR
)

func (d *decodingReader) reset(r io.Reader, qp bool, buf []byte) {
	*d = decodingReader{r: r, qp: qp, buf: buf}
}

func (d *decodingReader) Read(p []byte) (int, error) {
	for d.lo == d.hi {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.buf[decodeLead:])
		var m int
		if d.qp {
			m = d.decodeQP(d.buf[decodeLead : decodeLead+n])
		} else {
			m = d.decodeBase64(d.buf[decodeLead : decodeLead+n])
		}
		if err != nil {
			m = d.flush(m)
			d.err = err
		}
		d.lo, d.hi = 0, m
	}
	n := copy(p, d.buf[d.lo:d.hi])
	d.lo += n
	return n, nil
}

// decodeBase64 skips every byte outside the alphabet (line breaks, blanks,
// garbage) like mail clients do; "=" ends a quantum early, so concatenated
// base64 blocks decode too.
func (d *decodingReader) decodeBase64(src []byte) int {
	dst := d.buf
	m := 0
	for _, c := range src {
		v := base64Table[c]
		switch {
		case v == b64Skip:
			continue
		case v == b64Pad:
			m = d.flushBase64(m)
			continue
		}
		d.acc = d.acc<<6 | uint32(v)
		d.nacc++
		if d.nacc == 4 {
			dst[m] = byte(d.acc >> 16)
			dst[m+1] = byte(d.acc >> 8)
			dst[m+2] = byte(d.acc)
			m += 3
			d.acc, d.nacc = 0, 0
		}
	}
	return m
}

func (d *decodingReader) flushBase64(m int) int {
	switch d.nacc {
	case 2:
		d.buf[m] = byte(d.acc >> 4)
		m++
	case 3:
		d.buf[m] = byte(d.acc >> 10)
		d.buf[m+1] = byte(d.acc >> 2)
		m += 2
	}
	d.acc, d.nacc = 0, 0
	return m
}

// decodeQP follows RFC 2045 §6.7 and passes anything invalid through as
// the literal bytes, as mail clients do.
func (d *decodingReader) decodeQP(src []byte) int {
	dst := d.buf
	m := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch d.st {
		case qpNormal:
			// Runs without "=" are the bulk of any text: copied in one go.
			j := bytes.IndexByte(src[i:], '=')
			if j < 0 {
				return m + copy(dst[m:], src[i:])
			}
			m += copy(dst[m:], src[i:i+j])
			i += j + 1
			d.st = qpEq
			continue
		case qpEq:
			switch {
			case unhex(c) < 16:
				d.hexc = c
				d.st = qpHex
			case c == ' ' || c == '\t':
				d.st = qpEqWS
			case c == '\r':
				d.st = qpEqCR
			case c == '\n':
				d.st = qpNormal
			default:
				dst[m] = '='
				m++
				d.st = qpNormal
				continue // c again, as ordinary text
			}
		case qpHex:
			d.st = qpNormal
			v := unhex(c)
			if v >= 16 {
				dst[m] = '='
				dst[m+1] = d.hexc
				m += 2
				continue
			}
			dst[m] = unhex(d.hexc)<<4 | v
			m++
		case qpEqWS:
			switch c {
			case ' ', '\t':
			case '\r':
				d.st = qpEqCR
			case '\n':
				d.st = qpNormal
			default:
				dst[m] = '='
				m++
				d.st = qpNormal
				continue
			}
		case qpEqCR:
			d.st = qpNormal
			if c != '\n' {
				dst[m] = '='
				m++
				continue
			}
		}
		i++
	}
	return m
}

func (d *decodingReader) flush(m int) int {
	if !d.qp {
		return d.flushBase64(m)
	}
	switch d.st {
	case qpEq:
		d.buf[m] = '='
		m++
	case qpHex:
		d.buf[m] = '='
		d.buf[m+1] = d.hexc
		m += 2
	}
	d.st = qpNormal
	return m
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 255
}

const (
	b64Skip = 0xff
	b64Pad  = 0xfe
)

// base64Table maps both the standard and the URL alphabet.
var base64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Skip
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63
	t['='] = b64Pad
	return t
}()

// appendText appends decoded text for the body rules, as UTF-8 where that is
// cheap: Latin-1 and its Windows superset are widened byte by byte, other
// charsets are kept as they are (their ASCII still matches).
func appendText(dst, src []byte, latin1 bool, limit int) []byte {
	if room := limit - len(dst); room < len(src) {
		if room <= 0 {
			return dst
		}
		src = src[:room]
	}
	if !latin1 {
		return append(dst, src...)
	}
	for _, c := range src {
		if c < utf8.RuneSelf {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst
}

// charsetKind says how a text part's charset is handled: the body rules see
// UTF-8 for utf-8, ASCII and Latin-1; known others are scanned as they are;
// a name nobody knows is a malformation (go-message reports it the same way).
func charsetKind(cs string) (latin1, known bool) {
	cs = strings.ToLower(strings.Trim(cs, " \t\""))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "unicode-1-1-utf-8":
		return false, true
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "windows-1252", "cp1252", "x-cp1252":
		return true, true
	}
	for _, p := range knownCharsetPrefixes {
		if strings.HasPrefix(cs, p) {
			return false, true
		}
	}
	_, known = knownCharsets[cs]
	return false, known
}

var knownCharsetPrefixes = []string{
	"iso-8859-", "iso8859-", "iso_8859-", "windows-", "cp", "ibm", "x-mac-", "utf-16", "utf-32",
	"iso-2022-", "koi8-", "x-iso-", "x-windows-",
}

var knownCharsets = map[string]struct{}{
	"utf-7": {}, "gb2312": {}, "gbk": {}, "gb18030": {}, "big5": {}, "big5-hkscs": {},
	"shift_jis": {}, "shift-jis": {}, "sjis": {}, "x-sjis": {}, "euc-jp": {}, "euc-kr": {},
	"ks_c_5601-1987": {}, "tis-620": {}, "macintosh": {}, "latin2": {}, "hz-gb-2312": {},
	"x-user-defined": {}, "viscii": {},
	"euc-cn": {}, "x-euc-jp": {}, "csiso2022jp": {}, "us": {},
}
