package scanner

import (
	"bytes"
	"io"
)

// chunks holds an archive while it is inspected. Fixed-size pieces instead
// of one growing slice: append's growth would allocate several times the
// archive's size on the way to holding it (about 5× for an 18 MB zip).
type chunks struct {
	bufs [][]byte
	size int64
}

const chunkLen = 256 << 10

func (c *chunks) write(p []byte) {
	for len(p) > 0 {
		if n := len(c.bufs); n == 0 || len(c.bufs[n-1]) == chunkLen {
			if n < cap(c.bufs) && cap(c.bufs[:n+1][n]) == chunkLen {
				c.bufs = c.bufs[:n+1] // a piece kept by reset
			} else {
				c.bufs = append(c.bufs, make([]byte, 0, chunkLen))
			}
		}
		last := &c.bufs[len(c.bufs)-1]
		k := min(len(p), chunkLen-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
		c.size += int64(k)
	}
}

// reset empties c, keeping up to keep pieces for the next message.
func (c *chunks) reset(keep int) {
	all := c.bufs[:cap(c.bufs)]
	for i := range all {
		if i < keep && all[i] != nil {
			all[i] = all[i][:0]
		} else {
			all[i] = nil
		}
	}
	c.bufs = all[:0]
	c.size = 0
}

func (c *chunks) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= c.size {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && off < c.size {
		b := c.bufs[off/chunkLen][off%chunkLen:]
		k := copy(p, b)
		p = p[k:]
		n += k
		off += int64(k)
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// count counts occurrences of sep (shorter than a piece), also across
// piece boundaries.
func (c *chunks) count(sep []byte) int {
	n := 0
	var edge [16]byte
	for i, b := range c.bufs {
		n += bytes.Count(b, sep)
		if i+1 < len(c.bufs) {
			k := copy(edge[:], b[max(0, len(b)-len(sep)+1):])
			k += copy(edge[k:], c.bufs[i+1][:min(len(c.bufs[i+1]), len(sep)-1)])
			n += bytes.Count(edge[:k], sep)
		}
	}
	return n
}
