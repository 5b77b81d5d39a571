// Package deliver talks SMTP to the downstream mail server: a session that
// mirrors a client's envelope as it arrives (before-queue relay), and a
// one-shot Send for releasing quarantined mail.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/coalesce"
)

// Options name the downstream server and how to talk to it.
type Options struct {
	Addr    string            // host:port
	Helo    string            // our name in EHLO
	Timeout time.Duration     // per command; the DATA answer gets 10 minutes (RFC 5321 §4.5.3.2.6)
	Buffers *coalesce.Buffers // read-ahead buffers shared by the connections; nil = none
}

// ErrUnconfirmed is wrapped by Data's error when the message was sent but
// the server's answer to it never came (the connection broke, the time
// ran out): the server may have accepted it, so sending it again may make
// a second copy.
var ErrUnconfirmed = errors.New("the downstream's answer to the message was lost")

// Conn is one SMTP session with the downstream server. It is not safe for
// concurrent use; a front-end session owns it.
type Conn struct {
	c    *smtp.Client
	raw  net.Conn       // the socket, closed to interrupt a call
	wire *coalesce.Conn // what go-smtp writes through
	// Kept for the connection's life (pooled connections live long), so
	// relaying a message allocates no copy buffers.
	stuffer dotStuffer
	copyBuf []byte
	addr    string
	// stop undoes the context watch set up for the call in progress.
	stop func() bool
	// downgraded: the client's transaction asked for SMTPUTF8, which this
	// server lacks, so it runs without and must stay ASCII.
	downgraded bool
	// broken: a DATA was abandoned by closing the socket; never reused.
	broken bool
}

// Dial connects and greets the downstream server.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to downstream %s: %w", o.Addr, err)
	}
	wire := coalesce.New(raw, o.Buffers)
	c := smtp.NewClient(wire)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = 10 * time.Minute
	conn := &Conn{c: c, raw: raw, wire: wire, addr: o.Addr}
	// go-smtp exchanges the greeting and EHLO lazily with the first
	// command (MAIL), which saves a round trip per connection; an unwilling
	// server shows up there.
	if err := conn.guard(ctx, func() error { return c.Hello(o.Helo) }); err != nil {
		raw.Close()
		return nil, fmt.Errorf("greet downstream %s: %w", o.Addr, err)
	}
	return conn, nil
}

// guard runs f, aborting the network I/O when ctx ends: go-smtp's client has
// no context of its own, so closing the socket is the only way to interrupt it.
func (c *Conn) guard(ctx context.Context, f func() error) error {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	err := f()
	if !stop() && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Mail starts a transaction. A refusal by the server is an *smtp.SMTPError
// (reachable with errors.As); anything else is a connection failure.
func (c *Conn) Mail(ctx context.Context, from string, opts *smtp.MailOptions) error {
	if c.broken {
		return fmt.Errorf("MAIL FROM at downstream %s: connection abandoned", c.addr)
	}
	var fwd *smtp.MailOptions
	c.downgraded = false
	if opts != nil {
		// Only what the downstream can honour unchanged is passed on: the
		// size lets it refuse early, SMTPUTF8 must be kept for UTF-8
		// addresses, and DSN parameters belong to the sender.
		fwd = &smtp.MailOptions{Size: opts.Size, UTF8: opts.UTF8, Return: opts.Return, EnvelopeID: opts.EnvelopeID}
		// go-smtp's client refuses to send SMTPUTF8 to a server without
		// it (an error that is no refusal, so a tempfail for ever).
		if ok, _ := c.c.Extension("SMTPUTF8"); opts.UTF8 && !ok {
			if !isASCII(from) {
				return fmt.Errorf("MAIL FROM at downstream %s: %w", c.addr, errUTF8Address)
			}
			fwd.UTF8, c.downgraded = false, true
		}
	}
	if err := c.guard(ctx, func() error { return c.c.Mail(QuoteAddress(from), fwd) }); err != nil {
		return fmt.Errorf("MAIL FROM at downstream %s: %w", c.addr, err)
	}
	return nil
}

// Rcpt adds a recipient; the server's refusal comes back as *smtp.SMTPError.
func (c *Conn) Rcpt(ctx context.Context, to string, opts *smtp.RcptOptions) error {
	if c.downgraded && !isASCII(to) {
		return fmt.Errorf("RCPT TO at downstream %s: %w", c.addr, errUTF8Address)
	}
	if err := c.guard(ctx, func() error { return c.c.Rcpt(QuoteAddress(to), opts) }); err != nil {
		return fmt.Errorf("RCPT TO at downstream %s: %w", c.addr, err)
	}
	return nil
}

// Data sends header lines (each without line end) followed by the body and
// returns the server's final reply text.
func (c *Conn) Data(ctx context.Context, header []string, body io.Reader) (string, error) {
	var reply string
	if c.downgraded {
		body = &asciiHeader{r: body}
	}
	err := c.guard(ctx, func() error {
		w, err := c.c.Data()
		if err != nil {
			return err
		}
		// The body goes straight to the connection, dot-stuffed a line at
		// a time, except its final CRLF: that goes through go-smtp's own
		// DotWriter, which then knows the last line is complete and ends
		// the data with just ".\r\n" before reading the reply.
		ht := &holdTail{w: c.wire}
		st := &c.stuffer
		*st = dotStuffer{w: ht, out: st.out}
		for _, h := range header {
			if _, err := io.WriteString(st, h+"\r\n"); err != nil {
				return err
			}
		}
		if c.copyBuf == nil {
			c.copyBuf = make([]byte, 32<<10)
		}
		if _, err := io.CopyBuffer(st, body, c.copyBuf); err != nil {
			return err
		}
		if _, err := ht.Write(st.end()); err != nil {
			return err
		}
		if _, err := w.Write(ht.tail[:]); err != nil {
			return err
		}
		resp, err := w.CloseWithResponse()
		if err != nil && !IsRefusal(err) {
			// The end of the data went out, or part of it: the server may
			// have taken the message.
			return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
		}
		if err != nil {
			return err
		}
		reply = resp.StatusText
		return nil
	})
	if errors.Is(err, errUTF8Header) {
		// The server has part of the message and would take a final dot:
		// only a dropped connection makes it forget the transaction.
		c.broken = true
		c.raw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("DATA at downstream %s: %w", c.addr, err)
	}
	return reply, nil
}

// holdTail passes a stream on but keeps its last two bytes back: the
// stuffed body always ends in CRLF, and that CRLF is sent last.
type holdTail struct {
	w    io.Writer
	tail [2]byte
	n    int // bytes held in tail
}

func (h *holdTail) Write(p []byte) (int, error) {
	if h.n+len(p) <= 2 {
		h.n += copy(h.tail[h.n:], p)
		return len(p), nil
	}
	// Flush what was held, then all of p but its last bytes.
	keep := min(2, len(p))
	if h.n > 0 {
		send := h.n - (2 - keep) // held bytes that no longer belong to the tail
		if _, err := h.w.Write(h.tail[:send]); err != nil {
			return 0, err
		}
		copy(h.tail[:], h.tail[send:h.n])
		h.n -= send
	}
	if _, err := h.w.Write(p[:len(p)-keep]); err != nil {
		return 0, err
	}
	h.n += copy(h.tail[h.n:], p[len(p)-keep:])
	return len(p), nil
}

// Reset abandons the transaction in progress.
func (c *Conn) Reset(ctx context.Context) error {
	if err := c.guard(ctx, c.c.Reset); err != nil {
		return fmt.Errorf("RSET at downstream %s: %w", c.addr, err)
	}
	return nil
}

// Close ends the session politely when it can, and always frees the socket.
func (c *Conn) Close() error {
	c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	err := c.c.Quit()
	c.c.Close()
	return err
}

// Send delivers one whole message in its own session.
func Send(ctx context.Context, o Options, from string, rcpts []string, header []string, body io.Reader) (string, error) {
	c, err := Dial(ctx, o)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// A UTF-8 envelope (a message released from quarantine) needs SMTPUTF8.
	utf8 := !isASCII(from)
	for _, r := range rcpts {
		utf8 = utf8 || !isASCII(r)
	}
	if err := c.Mail(ctx, from, &smtp.MailOptions{UTF8: utf8}); err != nil {
		return "", err
	}
	var accepted int
	var refused []error
	for _, r := range rcpts {
		if err := c.Rcpt(ctx, r, nil); err != nil {
			if IsTransient(err) && !IsRefusal(err) {
				return "", err
			}
			refused = append(refused, err)
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return "", errors.Join(refused...)
	}
	reply, err := c.Data(ctx, header, body)
	if err != nil {
		return "", err
	}
	if len(refused) > 0 {
		return reply, fmt.Errorf("%d of %d recipients refused: %w", len(refused), len(rcpts), errors.Join(refused...))
	}
	return reply, nil
}

// IsRefusal reports whether err is the downstream server's own SMTP answer
// (as opposed to a connection or protocol failure).
func IsRefusal(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// IsTransient reports whether err is worth trying again later: a 4xx answer
// or any failure that is not the server's permanent refusal.
func IsTransient(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code/100 == 4
	}
	return err != nil
}

// QuoteAddress renders an address for an SMTP path, quoting a local part
// that is not a dot-atom (go-smtp's parser hands it to us unquoted).
func QuoteAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return addr
	}
	local := addr[:at]
	if IsDotAtom(local) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range local {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String() + addr[at:]
}

// IsDotAtom reports whether s is an RFC 5321 Dot-string (UTF-8 allowed, as
// with SMTPUTF8).
func IsDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r >= 0x80 {
			continue
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r) {
			return false
		}
	}
	return true
}
