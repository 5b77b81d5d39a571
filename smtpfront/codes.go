package smtpfront

import (
	"net/netip"

	"github.com/emersion/go-smtp"
)

// Every reply the front end makes itself, with the RFC that defines its code.
// Texts are generic on purpose: causes go to the log, never to the client
// (a block names its list entry: see blockedReply).
var (
	// RFC 5321 §4.2.3 421: service not available, closing channel.
	errTooManyConns  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Too many connections, try again later"}
	errTooManyFromIP = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many connections from your address, try again later"}

	// RFC 3207 §4: 530 5.7.0 Must issue a STARTTLS command first.
	errNeedTLS = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}

	// RFC 3463 X.1.3: bad destination mailbox address syntax.
	errBadRcptSyntax   = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	errBadSenderSyntax = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	// RFC 5321 §4.5.3.1.3: a path is at most 256 octets.
	errSenderTooLong = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Sender address too long"}
	errRcptTooLong   = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Recipient address too long"}
	// RFC 6531 §3.4 and X.6.7: a UTF-8 address needs MAIL's SMTPUTF8 parameter.
	errNeedSMTPUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Must declare SMTPUTF8 to send unicode address"}
	// RFC 3463 X.5.4: invalid command arguments (HELO/EHLO).
	errHeloTooLong = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "HELO/EHLO argument too long"}
	errBadHelo     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Bad HELO/EHLO argument"}
	// RFC 5321 §3.8 421 closing the channel; X.7.0 as Postfix's
	// smtpd_hard_error_limit, X.4.2 (bad connection) for a client that
	// went quiet mid-command.
	errTooManyErrors = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many errors, closing connection"}
	errTimeout       = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout exceeded, closing connection"}
	// Policy block from the lists, RFC 3463 X.7.1; the text sent names the
	// entry (blockedReply).
	errBlocked = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message refused by policy"}
	// RFC 5321 §3.3 and RFC 3463 X.5.3: one DATA answer covers all
	// recipients, so a recipient with another policy waits for its own
	// transaction (the sending MTA retries it at once).
	errSplitRcpt = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Recipient policy differs, send it in a separate transaction"}

	// RFC 3463 X.4.1: no answer from host (the downstream server).
	errDownstreamDown = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "Next hop temporarily unavailable, try again later"}
	// RFC 3463 X.3.2: system not accepting network messages (overload).
	errOverloaded = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Too busy to scan your message now, try again later"}
	// RFC 3463 X.7.0: the scanner's tempfail verdict (the message could
	// not be scanned completely); the verdict's reason replaces the text.
	errScanTempfail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Message could not be scanned, try again later"}
	// RFC 3463 X.3.0: other or undefined mail system status.
	errLocal = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error in processing, try again later"}
	// RFC 3463 X.4.7: delivery time expired (the body did not arrive in time).
	errDataTimeout = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 7}, Message: "Timeout reading the message"}
	// RFC 3463 X.6.0: a line longer than we read is a media error.
	errLineTooLong = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message has a line too long"}
)

// relayDenied is RFC 5321 §3.6.2 / RFC 3463 X.7.1, relaying denied. Unlike
// the other texts it names its cause, the client's address and the keys
// that would allow it: the usual client is a Postfix in front, whose log
// and bounce then say what to fix (its address missing from
// smtp.trusted_networks) instead of a bare "Relay access denied". The
// recipient is not echoed, so the line stays short whatever it was.
func relayDenied(ip netip.Addr, why string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Relay access denied: client [" + ip.Unmap().String() + "] is not in smtp.trusted_networks and " + why}
}

// reply builds a one-off answer, e.g. the downstream's 250 text.
func reply(code int, enh smtp.EnhancedCode, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: text}
}
