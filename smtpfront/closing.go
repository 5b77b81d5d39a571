package smtpfront

import "github.com/emersion/go-smtp"

// What counts towards smtp.hard_error_limit, per connection (STARTTLS
// does not start it anew), like Postfix's smtpd_hard_error_limit: every
// MAIL or RCPT refused for the client's own doing — relay denied, blocked
// by a list, bad or over-long address, UTF-8 without SMTPUTF8, STARTTLS
// required, a bad HELO argument — and every refusal of MAIL or RCPT by the
// downstream (4xx or 5xx: that is how recipient harvesting looks). Not
// counted: our own 452 4.5.3 recipient split, 451 4.4.1 when the
// downstream cannot be reached, and the answer to DATA (a rejected
// message is no protocol error). Commands go-smtp refuses itself never
// reach the session: it closes the connection after the fourth unknown or
// mangled command line, and malformed MAIL/RCPT arguments keep nothing. An
// accepted message (250 to DATA) starts the count anew, as in Postfix.

// closing refuses to act on a command when the session is over: read
// after a read timeout (so a partial line), or after the reply that ended
// the session (pipelined behind it).
func (ss *session) closing() *smtp.SMTPError {
	switch {
	case ss.tc == nil:
		return nil
	case ss.tc.timedOut():
		ss.tc.end()
		return errTimeout
	case ss.tc.ending.Load():
		return errTooManyErrors
	}
	return nil
}

// failed counts a refused command and returns the reply for it: err, or
// the 421 4.7.0 that ends the connection when this refusal reaches the
// limit.
func (ss *session) failed(err *smtp.SMTPError) *smtp.SMTPError {
	if err == errDownstreamDown || ss.tc == nil || !ss.tc.refuse(ss.s.o.HardErrorLimit) {
		return err
	}
	ss.tc.end()
	ss.s.metrics.sessionsClosed.WithLabelValues("error_limit").Inc()
	ss.s.log.Info("too many errors, closing connection", "client", ss.ip.String(),
		"limit", ss.s.o.HardErrorLimit, "last", err.Error())
	return errTooManyErrors
}
