package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ownHeaderPrefix starts every header field the gateway adds.
const ownHeaderPrefix = "x-mxgate-"

// StripOwnHeaders returns the message with every X-Mxgate-* field of its
// header removed, folded lines included. A sender could otherwise forge
// "X-Mxgate-Verdict: deliver (clean)" for the filters behind the gateway
// to trust. Lines of any length are handled, so padding cannot push a
// forged field past the filter; the body passes unchanged.
func StripOwnHeaders(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 4096)
	var kept bytes.Buffer
	dropping, atLineStart := false, true
	for {
		frag, err := br.ReadSlice('\n')
		if atLineStart {
			if len(frag) == 0 || bytes.Equal(frag, []byte("\r\n")) || bytes.Equal(frag, []byte("\n")) {
				kept.Write(frag) // the empty line that ends the header
				return io.MultiReader(&kept, br)
			}
			switch {
			case frag[0] == ' ' || frag[0] == '\t':
				// A continuation belongs to the field before it.
			case len(frag) >= len(ownHeaderPrefix) && bytes.EqualFold(frag[:len(ownHeaderPrefix)], []byte(ownHeaderPrefix)):
				dropping = true
			default:
				dropping = false
			}
		}
		if !dropping {
			kept.Write(frag)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			atLineStart = false // the same line goes on
			continue
		}
		if err != nil {
			return &kept // the message ended inside its header
		}
		atLineStart = true
	}
}
