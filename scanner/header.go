package scanner

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// maxLenientHeader bounds one header as the skipping reading keeps it; the
// rest of a longer one is body, as in the first reading.
const maxLenientHeader = 256 << 10

// header reads an entity's header. go-message ends a header at a line that
// is no field (no colon, a bad name, a first line that starts blank) and
// the walk takes the rest as body, as Postfix and Python's email package
// do; other readers skip the line and read on, which is a reading of its
// own (readSkipBadHeader).
func (w *walker) header(br *bufio.Reader, part int) textproto.Header {
	if w.rd&readSkipBadHeader != 0 {
		return w.lenientHeader(br, part)
	}
	h, err := textproto.ReadHeader(br)
	if err != nil {
		w.malformed("part %d: header: %v", part, err)
		if strings.Contains(err.Error(), "malformed MIME header") {
			// Broken mailers leave such lines in real mail (a header
			// folded without the blank): MIME_MALFORMED says enough, the
			// other reading is what counts.
			w.p.ambiguity |= readSkipBadHeader
		}
	}
	return h
}

// lenientHeader reads a header up to its blank line, leaving out lines
// that are no field (and their continuation lines).
func (w *walker) lenientHeader(br *bufio.Reader, part int) textproto.Header {
	buf := w.sc.hdr[:0]
	keep := false
	for {
		start := len(buf)
		var err error
		overflow := false
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			if len(buf)+len(frag) < maxLenientHeader {
				buf = append(buf, frag...)
			} else {
				overflow = true
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		line := bytes.TrimRight(buf[start:], "\r\n")
		if overflow {
			w.malformed("part %d: header longer than %d bytes", part, maxLenientHeader)
			buf = buf[:start]
			break
		}
		if len(line) == 0 {
			buf = buf[:start]
			break
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
		case isFieldLine(line):
			keep = true
		default:
			keep = false
		}
		if !keep {
			buf = buf[:start]
		} else if buf[len(buf)-1] != '\n' {
			buf = append(buf, '\r', '\n')
		}
		if err != nil {
			break
		}
	}
	buf = append(buf, '\r', '\n')
	w.sc.hdr = buf
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(buf)))
	if err != nil {
		w.malformed("part %d: header: %v", part, err)
	}
	return h
}

// isFieldLine is go-message's test for a header field: a colon after a
// name of printable ASCII (blanks around the name are tolerated).
func isFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return false
	}
	key := bytes.Trim(line[:i], " \t")
	for _, c := range key {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
