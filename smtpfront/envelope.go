package smtpfront

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/deliver"
)

const (
	// maxPathOctets is RFC 5321 §4.5.3.1.3's limit for a reverse- or
	// forward-path, angle brackets included. Every address lands in the
	// message log, the log line and the downstream's envelope, so nothing
	// longer is taken.
	maxPathOctets = 256
	// maxHeloOctets is the longest domain name (RFC 1035 §2.3.4); the HELO
	// argument lands in every record and Received header.
	maxHeloOctets = 255
)

// addrFault is what is wrong with an envelope address, if anything.
type addrFault int

const (
	addrOK       addrFault = iota
	addrBadChars           // NUL, CR, LF, other control characters, invalid UTF-8
	addrTooLong
	addrNeedsUTF8 // non-ASCII without the SMTPUTF8 parameter
)

// checkAddress judges an address as go-smtp hands it over: local part
// unquoted, source route dropped. smtputf8 is whether MAIL carried the
// SMTPUTF8 parameter (RFC 6531 §3.4: only then may an address be UTF-8).
func checkAddress(addr string, smtputf8 bool) addrFault {
	ascii := true
	for i := 0; i < len(addr); {
		b := addr[i]
		if b < utf8.RuneSelf {
			if b < ' ' || b == 0x7f {
				return addrBadChars
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(addr[i:])
		if r == utf8.RuneError && size <= 1 || unicode.IsControl(r) {
			return addrBadChars
		}
		ascii = false
		i += size
	}
	// The path as it goes on the wire: "<" quoted-local@domain ">".
	if len(addr) > maxPathOctets || len(deliver.QuoteAddress(addr))+2 > maxPathOctets {
		return addrTooLong
	}
	if !ascii && !smtputf8 {
		return addrNeedsUTF8
	}
	return addrOK
}

// checkSender returns nil when from may be a MAIL FROM reverse-path.
func checkSender(from string, smtputf8 bool) *smtp.SMTPError {
	if from == "" {
		return nil // the null reverse-path <>
	}
	switch checkAddress(from, smtputf8) {
	case addrBadChars:
		return errBadSenderSyntax
	case addrTooLong:
		return errSenderTooLong
	case addrNeedsUTF8:
		return errNeedSMTPUTF8
	}
	if strings.LastIndexByte(from, '@') <= 0 {
		return errBadSenderSyntax
	}
	return nil
}

// checkRecipient returns nil when rcpt may be a RCPT TO forward-path as
// far as its form goes; the relay policy decides the rest.
func checkRecipient(rcpt string, smtputf8 bool) *smtp.SMTPError {
	switch checkAddress(rcpt, smtputf8) {
	case addrBadChars:
		return errBadRcptSyntax
	case addrTooLong:
		return errRcptTooLong
	case addrNeedsUTF8:
		return errNeedSMTPUTF8
	}
	return nil
}

// checkHelo returns nil when the HELO/EHLO argument may be recorded.
func checkHelo(helo string) *smtp.SMTPError {
	if len(helo) > maxHeloOctets {
		return errHeloTooLong
	}
	if !utf8.ValidString(helo) {
		return errBadHelo
	}
	for _, r := range helo {
		if r <= ' ' || unicode.IsControl(r) {
			return errBadHelo
		}
	}
	return nil
}
