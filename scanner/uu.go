package scanner

import (
	"bytes"
	"io"
	"strconv"
	"strings"
)

// maxUULine is how much of a line is kept: a data line is 61 characters
// (a client decodes no more than the length character says), and of a
// longer begin line the end is kept as well, where the name's extension is.
const maxUULine = 1024

// uuScanner finds uuencoded files ("begin 644 name" ... "end") in a text
// part or an x-uuencode part, as Outlook Express and others sent them and
// many clients still show them as attachments. Each file is decoded
// (bounded by the archive byte budget) and inspected like an archive
// entry: its name by the attachment policy, its content for the patterns,
// PE sniffing and archives.
type uuScanner struct {
	w    *walker
	part int
	data *chunks // the decoded file so far

	line [maxUULine]byte
	n    int
	long bool // the current line is longer than maxUULine
	tail [maxNameLen]byte
	tn   int // bytes in tail: the end of a long line

	in   bool // inside a begin ... end block
	name string
	over bool // the file outgrew the budget: the rest is not kept
}

// feed takes the next bytes of the part's decoded content.
func (u *uuScanner) feed(p []byte) error {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		k := copy(u.line[u.n:], seg)
		u.n += k
		if k < len(seg) {
			if !u.long {
				u.long = true
				u.keepTail(u.line[u.n-min(u.n, maxNameLen) : u.n])
			}
			u.keepTail(seg[k:])
		}
		if i < 0 {
			return nil
		}
		p = p[i+1:]
		if err := u.endLine(); err != nil {
			return err
		}
	}
	return nil
}

// finish ends the part: a block without "end" is inspected as far as it
// went, as a lenient client would show it.
func (u *uuScanner) finish() error {
	if u.n > 0 || u.long {
		if err := u.endLine(); err != nil {
			return err
		}
	}
	return u.close()
}

// keepTail keeps the last maxNameLen bytes of a long line.
func (u *uuScanner) keepTail(p []byte) {
	if len(p) >= len(u.tail) {
		u.tn = copy(u.tail[:], p[len(p)-len(u.tail):])
		return
	}
	keep := min(u.tn, len(u.tail)-len(p))
	copy(u.tail[:], u.tail[u.tn-keep:u.tn])
	u.tn = keep + copy(u.tail[keep:], p)
}

func (u *uuScanner) endLine() error {
	line := bytes.TrimRight(u.line[:u.n], "\r")
	long := u.long
	u.n, u.long = 0, false
	if !u.in {
		if name, ok := uuBegin(line); ok {
			if long {
				// The name's end, where the extension is.
				name = strings.TrimSpace(string(bytes.TrimRight(u.tail[:u.tn], "\r")))
			}
			u.in, u.name, u.over = true, name, false
			u.data.reset(1)
		}
		u.tn = 0
		return nil
	}
	u.tn = 0
	if !long && string(bytes.TrimSpace(line)) == "end" {
		return u.close()
	}
	u.decodeLine(line)
	return nil
}

// uuBegin parses "begin MODE NAME"; the name may be empty or hold blanks.
func uuBegin(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("begin"))
	if !ok || len(rest) == 0 || rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	rest = bytes.TrimLeft(rest, " \t")
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '7' {
		i++
	}
	if i == 0 || i > 4 || i < len(rest) && rest[i] != ' ' && rest[i] != '\t' {
		return "", false
	}
	return strings.TrimSpace(string(rest[i:])), true
}

// decodeLine decodes one line leniently: the first character gives the
// length, every character counts modulo 64 (so "`" and " " are both 0),
// and missing characters are zeros.
func (u *uuScanner) decodeLine(line []byte) {
	if len(line) == 0 || u.over {
		return
	}
	n := int((line[0] - ' ') & 0x3f)
	src := line[1:]
	var out [66]byte
	for i, k := 0, 0; k < n; i, k = i+4, k+3 {
		var c [4]byte
		for j := range c {
			if i+j < len(src) {
				c[j] = (src[i+j] - ' ') & 0x3f
			}
		}
		out[k] = c[0]<<2 | c[1]>>4
		out[k+1] = c[1]<<4 | c[2]>>2
		out[k+2] = c[2]<<6 | c[3]
	}
	if u.data.size+int64(n) > u.w.lim.maxArchiveBytes {
		u.over = true
		u.w.archiveLimit(limitArchiveSize, "part %d: uuencoded file %s larger than %d bytes", u.part, u.name, u.w.lim.maxArchiveBytes)
		return
	}
	u.data.write(out[:n])
}

// close inspects the file of the block just ended.
func (u *uuScanner) close() error {
	if !u.in {
		return nil
	}
	u.in = false
	w := u.w
	if !w.takeEntry() {
		return nil
	}
	name := tailName(u.name)
	e := entry{name: name}
	if e.name == "" {
		e.name = "part " + strconv.Itoa(u.part) + " (uuencoded)"
	}
	err := w.member(io.NewSectionReader(u.data, 0, u.data.size), &e, u.part, 0)
	u.data.reset(1)
	if err != nil {
		return err
	}
	lf := leaf{part: u.part, exe: e.exe}
	if name != "" {
		lf.names = []string{name}
	}
	w.p.leaves = append(w.p.leaves, lf)
	return nil
}
