package deliver

import (
	"io"

	"github.com/emersion/go-smtp"
)

// A client's SMTPUTF8 transaction towards a downstream without SMTPUTF8
// (RFC 6531 §3.7.4.2): delivered without the parameter while the envelope
// and the message header are ASCII, refused for good where they are not —
// a retry would meet the same server.
var (
	// At MAIL or RCPT; X.6.7: non-ASCII addresses not permitted.
	errUTF8Address = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
		Message: "Non-ASCII address not permitted: the next hop does not support SMTPUTF8"}
	// At the end of DATA, where 553 is no reply code (RFC 5321 §4.3.2).
	errUTF8Header = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
		Message: "Non-ASCII message header not permitted: the next hop does not support SMTPUTF8"}
)

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// asciiHeader passes a message through and fails with errUTF8Header at
// the first non-ASCII byte of its header section (up to the first empty
// line; a bare CR is no line end here, so a header section that might end
// there is checked further rather than less).
type asciiHeader struct {
	r       io.Reader
	lineLen int  // bytes other than CR since the line began
	body    bool // past the header section
}

func (h *asciiHeader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.body {
		return n, err
	}
	for _, b := range p[:n] {
		switch {
		case b >= 0x80:
			return 0, errUTF8Header
		case b == '\n':
			if h.lineLen == 0 {
				h.body = true
				return n, err
			}
			h.lineLen = 0
		case b != '\r':
			h.lineLen++
		}
	}
	return n, err
}
