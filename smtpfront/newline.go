package smtpfront

import (
	"bytes"
	"io"
)

// crlfWriter passes a message body on with every bare CR made a CRLF, as
// it is spooled: RFC 5321 §2.3.8 allows CR only before LF, some servers
// take a bare CR for a line end and others do not, and a message must be
// scanned as the same lines the downstream will see (the downstream gets
// CRLF for it from the dot-stuffer too). Bare LF is left alone: the
// scanner and the dot-stuffer already agree it ends a line.
type crlfWriter struct {
	w   io.Writer
	cr  bool   // the last byte passed on was a CR
	out []byte // only allocated for a body that has a bare CR
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out := c.out[:0]
	fixed := false
	if c.cr && p[0] != '\n' {
		out = append(out, '\n')
		fixed = true
	}
	last := 0 // p[last:] is not yet in out
	for i := bytes.IndexByte(p, '\r'); i >= 0 && i+1 < len(p); {
		if p[i+1] != '\n' {
			out = append(out, p[last:i+1]...)
			out = append(out, '\n')
			last, fixed = i+1, true
		}
		j := bytes.IndexByte(p[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	c.cr = p[len(p)-1] == '\r'
	if !fixed {
		if _, err := c.w.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	out = append(out, p[last:]...)
	c.out = out
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// finish ends a body whose last byte is a bare CR (BDAT allows that).
func (c *crlfWriter) finish() error {
	if !c.cr {
		return nil
	}
	c.cr = false
	_, err := c.w.Write([]byte{'\n'})
	return err
}
