package smtpfront

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
)

// session is one client connection. go-smtp calls it from the connection's
// goroutine, except Data under BDAT, which runs in a goroutine of its own
// while RSET or a dropped connection may call Reset or Logout: mu keeps
// those from touching the transaction while Data still works on it.
type session struct {
	mu   sync.Mutex
	s    *Server
	conn *smtp.Conn
	ip   netip.Addr
	tc   *trackedConn // the connection below go-smtp (TLS included)

	down *deliver.Conn // kept across transactions, then given back to the pool

	// The transaction in progress.
	id        string
	start     time.Time
	from      string
	hasFrom   bool
	utf8      bool // MAIL carried SMTPUTF8
	rcpts     []string
	policy    lists.Kind        // of the first accepted recipient
	skipAtt   bool              // ... whose allow entry waives the attachment policy
	allowedBy *msglog.ListEntry // ... the allow entry that decided, for the log
	refused   refusedList       // the refused recipients, for the message log
	downInTx  bool
	dataTried bool
	dnsbl     dnsblState
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &session{s: s, conn: c, ip: remoteIP(c.Conn()), tc: trackedOf(c.Conn())}
	if err := ss.closing(); err != nil {
		return nil, err
	}
	if err := checkHelo(c.Hostname()); err != nil {
		return nil, ss.failed(err)
	}
	return ss, nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if err := ss.closing(); err != nil {
		return err
	}
	if ss.s.o.RequireTLS {
		if _, ok := ss.conn.TLSConnectionState(); !ok {
			return ss.failed(errNeedTLS)
		}
	}
	// A second EHLO does not come through newSession.
	if err := checkHelo(ss.conn.Hostname()); err != nil {
		return ss.failed(err)
	}
	utf8 := opts != nil && opts.UTF8
	if err := checkSender(from, utf8); err != nil {
		return ss.failed(err)
	}
	ss.id = newID()
	ss.start = time.Now()
	ss.from, ss.hasFrom, ss.utf8 = from, true, utf8
	if err := ss.downMail(from, opts); err != nil {
		ss.hasFrom = false
		ss.s.log.Info("sender refused", "id", ss.id, "client", ss.ip.String(), "from", from, "err", err.Error())
		return ss.failed(ss.downstreamError(err))
	}
	ss.downInTx = true
	return nil
}

// downMail opens the downstream transaction on the session's connection,
// or one from the pool. A kept connection may have been closed by the
// server while idle; then the transaction is tried once more on a new one.
func (ss *session) downMail(from string, opts *smtp.MailOptions) error {
	ctx, cancel := context.WithTimeout(ss.s.ctx, ss.s.o.Downstream.Timeout+time.Second)
	defer cancel()
	fresh := false
	if ss.down == nil {
		d, reused, err := ss.s.downPool.Get(ctx)
		if err != nil {
			ss.s.metrics.downstreamErrors.Inc()
			return err
		}
		ss.down, fresh = d, !reused
	}
	err := ss.down.Mail(ctx, from, opts)
	if err == nil || deliver.IsRefusal(err) && !isClosing(err) {
		return err
	}
	ss.dropDownstream()
	if fresh {
		return err
	}
	d, err := ss.s.downPool.Dial(ctx)
	if err != nil {
		ss.s.metrics.downstreamErrors.Inc()
		return err
	}
	ss.down = d
	if err := d.Mail(ctx, from, opts); err != nil {
		if !deliver.IsRefusal(err) || isClosing(err) {
			ss.dropDownstream()
		}
		return err
	}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if err := ss.closing(); err != nil {
		return err
	}
	if err := checkRecipient(to, ss.utf8); err != nil {
		return ss.refuse(to, "address", err, nil)
	}
	if err := ss.s.policy.checkRcpt(ss.ip, to); err != nil {
		return ss.refuse(to, "relay", err, nil)
	}
	pol := ss.s.o.Lists.Set().Policy(ss.from, ss.ip, to)
	kind := pol.Kind
	if kind == lists.Block {
		return ss.refuse(to, "blocked", blockedReply(pol.Entry), listEntry(pol.Entry))
	}
	if err := ss.checkDNSBL(kind); err != nil {
		return ss.refuse(to, "dnsbl", err, nil)
	}
	if len(ss.rcpts) > 0 && (kind != ss.policy || pol.SkipAttachments != ss.skipAtt) {
		return ss.refuse(to, "split", errSplitRcpt, listEntry(pol.Entry))
	}
	if ss.down == nil || !ss.downInTx {
		return ss.refuse(to, "downstream", errDownstreamDown, nil)
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, ss.s.o.Downstream.Timeout+time.Second)
	defer cancel()
	if err := ss.down.Rcpt(ctx, to, opts); err != nil {
		if !deliver.IsRefusal(err) || isClosing(err) {
			ss.dropDownstream()
		}
		return ss.refuse(to, "downstream", ss.downstreamError(err), nil)
	}
	if len(ss.rcpts) == 0 {
		ss.policy, ss.skipAtt, ss.allowedBy = kind, pol.SkipAttachments, listEntry(pol.Entry)
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// refuse answers a RCPT with err and keeps it for the transaction's record;
// entry is the list entry that decided, if one did.
func (ss *session) refuse(rcpt, reason string, err *smtp.SMTPError, entry *msglog.ListEntry) error {
	ss.s.metrics.rcptRefused.WithLabelValues(reason).Inc()
	if reason != "split" {
		err = ss.failed(err)
	}
	ss.refused.add(rcpt, err, entry)
	return err
}

func (ss *session) Data(r io.Reader) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.closing(); err != nil {
		return err
	}
	ss.dataTried = true
	rec := ss.record()
	reply, err := ss.data(r, &rec)
	if reply == nil {
		reply = errLocal
		ss.s.log.Error("message failed", "id", ss.id, "err", err)
	}
	rec.Reply = fmt.Sprintf("%d %d.%d.%d %s", reply.Code, reply.EnhancedCode[0], reply.EnhancedCode[1], reply.EnhancedCode[2], reply.Message)
	if rec.Action == "" {
		rec.Action = string(scanner.ActionTempfail)
		if reply.Code/100 == 5 {
			rec.Action = string(scanner.ActionReject)
		}
	}
	rec.Duration = time.Since(ss.start)
	ss.finish(rec, err)
	if reply.Code == 250 && ss.tc != nil {
		ss.tc.accepted()
	}
	return reply
}

// data runs one message from body to verdict to its destination, and
// returns the reply for the client (always an *smtp.SMTPError, 250 too:
// go-smtp writes it as it is) and the internal cause for the log.
func (ss *session) data(r io.Reader, rec *msglog.Record) (*smtp.SMTPError, error) {
	// go-smtp reads the body under the deadline set for the DATA line;
	// the body gets its own, longer one.
	ss.conn.Conn().SetReadDeadline(time.Now().Add(ss.s.o.DataTimeout))
	w := spool.NewWriter(ss.s.o.SpoolDir, spoolMemLimit)
	buf := ss.s.copyBufs.Get().(*[]byte)
	crlf := &crlfWriter{w: w}
	_, err := io.CopyBuffer(crlf, r, *buf)
	if err == nil {
		err = crlf.finish()
	}
	ss.s.copyBufs.Put(buf)
	if err != nil {
		w.Abort()
		ss.resetDownstream()
		return bodyError(err), fmt.Errorf("receive body: %w", err)
	}
	body := w.Finish()
	defer body.Close()
	rec.Size = body.Size()

	msg := &scanner.Message{
		ID:          ss.id,
		Env:         scanner.Envelope{ClientIP: ss.ip, Helo: ss.conn.Hostname(), Sender: ss.from, Recipients: ss.rcpts},
		Body:        body,
		Allowlisted: ss.policy == lists.Allow,
		AllowedBy:   ss.allowedByText(),
		// Set with policy at the first recipient, so never stale.
		SkipAttachments: ss.policy == lists.Allow && ss.skipAtt,
		Symbols:         ss.dnsbl.symbols(),
	}
	scanStart := time.Now()
	ctx, cancel := context.WithTimeout(ss.s.ctx, ss.s.o.ScanTimeout)
	v, err := ss.s.o.Scanner.Scan(ctx, msg)
	cancel()
	ss.s.metrics.scanSeconds.Observe(time.Since(scanStart).Seconds())
	if err != nil {
		ss.resetDownstream()
		if errors.Is(err, scanner.ErrOverloaded) {
			return errOverloaded, fmt.Errorf("scan: %w", err)
		}
		return errLocal, fmt.Errorf("scan: %w", err)
	}
	rec.Verdict, rec.Score, rec.Node = v.Class, v.Score, v.Node
	rec.Symbols = symbolNames(v.Symbols)
	rec.Viruses = v.Viruses

	switch v.Action {
	case scanner.ActionDeliver:
		rec.Action = string(v.Action)
		return ss.deliver(v, body, rec)
	case scanner.ActionQuarantine:
		ss.resetDownstream()
		heldAs, err := ss.quarantine(v, body)
		if err != nil {
			rec.Action = string(scanner.ActionTempfail)
			return errLocal, fmt.Errorf("quarantine: %w", err)
		}
		rec.Action = string(v.Action)
		rec.QuarantineID = heldAs
		return reply(250, smtp.EnhancedCode{2, 0, 0}, "Ok: queued as "+heldAs), nil
	case scanner.ActionReject:
		ss.resetDownstream()
		rec.Action = string(v.Action)
		return reply(550, smtp.EnhancedCode{5, 7, 1}, verdictText(v.Reason, "Message refused by policy")), nil
	case scanner.ActionTempfail:
		// A verdict, not a failure: the scanner could not scan all of the
		// message (scanner.on_limit: tempfail) or an outside engine gave
		// no verdict (its on_error: tempfail, "Content scanner
		// unavailable"), and the sender's queue holds it meanwhile.
		ss.resetDownstream()
		rec.Action = string(v.Action)
		return reply(errScanTempfail.Code, errScanTempfail.EnhancedCode, verdictText(v.Reason, errScanTempfail.Message)), nil
	default:
		ss.resetDownstream()
		rec.Action = string(scanner.ActionTempfail)
		return errLocal, fmt.Errorf("scanner gave action %q", v.Action)
	}
}

func (ss *session) deliver(v scanner.Verdict, body *spool.Buffer, rec *msglog.Record) (*smtp.SMTPError, error) {
	if ss.down == nil || !ss.downInTx {
		rec.Action = string(scanner.ActionTempfail)
		return errDownstreamDown, errors.New("no downstream transaction")
	}
	header := append([]string{ss.received()}, v.Headers()...)
	ctx, cancel := context.WithTimeout(ss.s.ctx, 11*time.Minute)
	defer cancel()
	text, err := ss.down.Data(ctx, header, mailauth.RemoveOwnResults(scanner.StripOwnHeaders(body.Reader()), ss.s.authservID()))
	ss.downInTx = false
	if err != nil {
		rec.Downstream = err.Error()
		if !deliver.IsRefusal(err) || isClosing(err) {
			ss.dropDownstream()
		}
		se := ss.downstreamError(err)
		if se.Code/100 == 5 {
			rec.Action = string(scanner.ActionReject)
		} else {
			rec.Action = string(scanner.ActionTempfail)
		}
		return se, fmt.Errorf("downstream data: %w", err)
	}
	rec.Downstream = text
	return reply(250, smtp.EnhancedCode{2, 0, 0}, acceptedText(ss.id, text)), nil
}

// quarantine stores the message and returns the id it is held under: its
// own, or the first one's when the client sent the same message before
// (see putHeld).
func (ss *session) quarantine(v scanner.Verdict, body *spool.Buffer) (string, error) {
	raw, err := body.Bytes()
	if err != nil {
		return "", err
	}
	subject, msgID := headerSummary(body)
	now := time.Now()
	it := quarantine.Item{
		ID:         ss.id,
		Time:       now,
		ClientIP:   ss.ip.String(),
		Helo:       ss.conn.Hostname(),
		Sender:     ss.from,
		Recipients: append([]string(nil), ss.rcpts...),
		Verdict:    v.Class,
		Score:      v.Score,
		Symbols:    symbolNames(v.Symbols),
		Viruses:    v.Viruses,
		Node:       v.Node,
		Size:       body.Size(),
		Subject:    subject,
		MessageID:  msgID,
		Expires:    now.Add(ss.s.o.QuarantineRetention),
		Digest:     quarantine.MessageDigest(ss.from, ss.rcpts, raw),
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, 30*time.Second)
	defer cancel()
	return putHeld(ctx, ss.s.o.Quarantine, it, raw, ss.s.log)
}

func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.reset()
}

func (ss *session) reset() {
	if ss.hasFrom && !ss.dataTried && !ss.refused.empty() {
		// A transaction that ended without a message still tells the
		// administrator why mail from this sender did not arrive.
		rec := ss.record()
		rec.Action = "refused"
		rec.Reply = ss.refused.String()
		rec.Duration = time.Since(ss.start)
		ss.finish(rec, nil)
	}
	ss.resetDownstream()
	ss.id, ss.from, ss.hasFrom, ss.utf8 = "", "", false, false
	ss.rcpts, ss.refused, ss.policy, ss.dataTried = nil, refusedList{}, "", false
	ss.skipAtt, ss.allowedBy = false, nil
	ss.dnsbl.resetTx()
}

func (ss *session) Logout() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.tc != nil && ss.tc.timedOut() {
		ss.s.metrics.sessionsClosed.WithLabelValues("timeout").Inc()
	}
	ss.reset()
	if ss.down != nil {
		// reset left no transaction open (or dropped the connection).
		ss.s.downPool.Put(ss.down)
		ss.down = nil
	}
	return nil
}

func (ss *session) record() msglog.Record {
	return msglog.Record{
		ID:         ss.id,
		Time:       ss.start,
		ClientIP:   ss.ip.String(),
		Helo:       truncateUTF8(ss.conn.Hostname(), maxHeloOctets), // a second EHLO is not checked before this
		Sender:     ss.from,
		Recipients: append([]string{}, ss.rcpts...), // [] in JSON, also when all were refused
		Refused:    ss.refused.refusals(),
		List:       ss.allowedBy,
		Node:       ss.s.o.NodeID,
	}
}

// allowedByText names the allow entry for the scanner's ALLOWLIST symbol.
func (ss *session) allowedByText() string {
	if ss.policy != lists.Allow || ss.allowedBy == nil {
		return ""
	}
	return ss.allowedBy.String()
}

// finish writes the one log line and the one message-log record of a
// message, or of a transaction whose every recipient was refused: the
// refused recipients are in both, each with its reply.
func (ss *session) finish(rec msglog.Record, cause error) {
	ss.s.metrics.message(rec.Action, rec.Verdict, rec.Size)
	attrs := []any{"id", rec.ID, "client", rec.ClientIP, "from", rec.Sender, "to", rec.Recipients,
		"size", rec.Size, "action", rec.Action, "verdict", rec.Verdict, "score", rec.Score,
		"symbols", rec.Symbols, "node", rec.Node, "reply", rec.Reply, "duration", rec.Duration}
	if !ss.refused.empty() {
		attrs = append(attrs, "refused", ss.refused.lines())
	}
	if rec.List != nil {
		attrs = append(attrs, "list", rec.List.String())
	}
	if rec.Downstream != "" {
		attrs = append(attrs, "downstream", rec.Downstream)
	}
	if cause != nil {
		attrs = append(attrs, "err", cause.Error())
	}
	ss.s.log.Info("message", attrs...)
	ss.s.logw.add(rec)
}

func (ss *session) resetDownstream() {
	if ss.down == nil || !ss.downInTx {
		return
	}
	ss.downInTx = false
	ctx, cancel := context.WithTimeout(ss.s.ctx, ss.s.o.Downstream.Timeout+time.Second)
	defer cancel()
	if err := ss.down.Reset(ctx); err != nil {
		ss.dropDownstream()
	}
}

func (ss *session) dropDownstream() {
	if ss.down != nil {
		ss.down.Close()
		ss.down = nil
	}
	ss.downInTx = false
}

// downstreamError turns what the downstream said (or failed to say) into
// the answer for our client: its own 4xx/5xx verbatim, as a before-queue
// proxy must, but never its 421 (that would close the wrong session) and
// never a connection error's text.
func (ss *session) downstreamError(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) && !isClosing(err) && se.Code >= 400 && se.Code < 600 {
		return &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: se.Message}
	}
	ss.s.metrics.downstreamErrors.Inc()
	return errDownstreamDown
}

func isClosing(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == 421
}

// bodyError maps a failure while reading DATA to the client's answer.
func bodyError(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case errors.As(err, &se) && se.Code == smtp.ErrDataTooLarge.Code:
		return smtp.ErrDataTooLarge
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout
	default:
		return errLocal
	}
}

// received is our trace header (RFC 5321 §4.4).
func (ss *session) received() string {
	proto := "ESMTP"
	if _, ok := ss.conn.TLSConnectionState(); ok {
		proto = "ESMTPS"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (mxgate) with %s id %s", sanitizeHelo(ss.conn.Hostname()), ss.ip, ss.s.o.Hostname, proto, ss.id)
	if len(ss.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitizeHelo(ss.rcpts[0]))
	}
	fmt.Fprintf(&b, ";\r\n\t%s", time.Now().Format(time.RFC1123Z))
	return b.String()
}

func sanitizeHelo(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' || r == ';' {
			return '_'
		}
		return r
	}, s)
}

// headerSummary reads Subject and Message-ID for the quarantine listing.
func headerSummary(body *spool.Buffer) (subject, msgID string) {
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(body.Reader(), 256<<10)))
	if err != nil && h.Len() == 0 {
		return "", ""
	}
	subject = h.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	return truncate(subject, 500), truncate(strings.TrimSpace(h.Get("Message-Id")), 500)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func symbolNames(syms []scanner.Symbol) []string {
	out := make([]string, 0, len(syms))
	for _, s := range syms {
		out = append(out, fmt.Sprintf("%s(%.2f)", s.Name, s.Score))
	}
	return out
}

// splitEnhanced separates "2.0.0 Ok: queued as X" into code and text.
func splitEnhanced(text string) (smtp.EnhancedCode, string) {
	code := smtp.EnhancedCode{2, 0, 0}
	first, rest, ok := strings.Cut(text, " ")
	if !ok {
		return code, text
	}
	var a, b, c int
	if n, err := fmt.Sscanf(first, "%d.%d.%d", &a, &b, &c); err == nil && n == 3 && a == 2 {
		return smtp.EnhancedCode{a, b, c}, rest
	}
	return code, text
}

// newID is a queue id: sortable by time, unique enough across a cluster.
func newID() string {
	return fmt.Sprintf("%011X%05X", time.Now().UnixMilli(), rand.Uint32()&0xFFFFF)
}

// authservID is the authserv-id forged Authentication-Results fields
// claim ("" = none is removed).
func (s *Server) authservID() string {
	if s.o.AuthservID == nil {
		return ""
	}
	return s.o.AuthservID()
}
