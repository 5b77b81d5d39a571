package deliver

import (
	"bytes"
	"io"
)

// dotStuffer encodes a message body for DATA (RFC 5321 §4.5.2) as
// net/textproto's DotWriter does — a leading dot doubled, a bare LF sent as
// CRLF — but a line at a time instead of a byte at a time (the DotWriter's
// per-byte buffered writes were a tenth of the gateway's CPU), and with a
// bare CR sent as CRLF too, where the DotWriter leaves it alone: a server
// that takes a bare CR for a line end would otherwise read "\r.\r" as the
// end of the data and what follows as commands (SMTP smuggling). What goes
// out has only CRLF line ends and no line that is a lone dot.
type dotStuffer struct {
	w     io.Writer
	out   []byte
	state int
}

const (
	stuffInitial = iota // nothing written yet
	stuffBegin          // at the start of a line
	stuffCR             // after a CR that may end the line
	stuffData           // inside a line
)

func (d *dotStuffer) Write(p []byte) (int, error) {
	out := d.out[:0]
	for i := 0; i < len(p); {
		c := p[i]
		switch d.state {
		case stuffCR:
			// The CR is out; with or without its LF it ends the line, and
			// the next byte (a dot, say) starts one.
			out = append(out, '\n')
			d.state = stuffBegin
			if c == '\n' {
				i++
			}
		case stuffData:
			// Find the line end with the vectorised byte search; a CR that
			// is not the one of a CRLF (rare) ends the line in stuffCR.
			rest := p[i:]
			nl := bytes.IndexByte(rest, '\n')
			crEnd := len(rest)
			if nl >= 0 {
				crEnd = nl
				if nl > 0 && rest[nl-1] == '\r' {
					crEnd = nl - 1
				}
			}
			if cr := bytes.IndexByte(rest[:crEnd], '\r'); cr >= 0 {
				out = append(out, rest[:cr+1]...)
				d.state = stuffCR
				i += cr + 1
				continue
			}
			if nl < 0 {
				out = append(out, rest...)
				i = len(p)
				continue
			}
			if nl > 0 && rest[nl-1] == '\r' {
				out = append(out, rest[:nl+1]...)
			} else {
				out = append(out, rest[:nl]...)
				out = append(out, '\r', '\n')
			}
			d.state = stuffBegin
			i += nl + 1
		case stuffInitial, stuffBegin:
			if c == '.' {
				out = append(out, '.')
			}
			d.state = stuffData
		}
	}
	d.out = out
	if _, err := d.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// end returns what must follow the stuffed bytes to finish the last line,
// so that only the terminating ".\r\n" remains.
func (d *dotStuffer) end() []byte {
	switch d.state {
	case stuffInitial, stuffData:
		return []byte("\r\n")
	case stuffCR:
		return []byte("\n")
	}
	return nil
}
