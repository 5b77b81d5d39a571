// Package spamd is the SpamAssassin client: one message per connection to
// spamd in the SPAMC/1.5 protocol, its verdict, score and rules mapped into
// mxgate's terms.
//
// The command is REPORT, not SYMBOLS: SYMBOLS names the rules that hit but
// not their points, and mxgate's merge needs each rule's points (REPORT's
// table has them, to one decimal). The table is read from the report text,
// which an administrator may change (report templates, languages); the
// score on the Spam header is spamd's authority, so points the table does
// not account for are kept in a symbol of their own (SPAMD_UNLISTED)
// instead of being lost.
package spamd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
)

const engineName = "spamd"

// Defaults of Options.
const (
	DefaultTimeout = 30 * time.Second
	// DefaultMaxConnections: spamd costs ~300 ms CPU per 10 KB message,
	// so more calls in flight only queue inside spamd.
	DefaultMaxConnections = 4
	// DefaultMaxSize is spamc's own limit (500 KiB).
	DefaultMaxSize = 500 << 10
)

// Symbols the client adds besides spamd's rules.
const (
	// SymbolSpam carries spamd's own verdict (score / threshold) for the
	// admin; its points are 0 because the rules already carry them.
	SymbolSpam = "SPAMD_SPAM"
	// SymbolSkippedSize marks a message not sent for being over MaxSize.
	SymbolSkippedSize = "SPAMD_SKIPPED_SIZE"
	// SymbolUnlisted holds the part of spamd's score its report's table
	// does not account for (a changed report template), so that the
	// symbols always add up to spamd's score.
	SymbolUnlisted = "SPAMD_UNLISTED"
	rulePrefix     = "SPAMD_"
)

// Options of a Client; the zero value of each field is its default.
type Options struct {
	Timeout        time.Duration // one call, once it has its turn; 0 = 30s
	MaxConnections int           // calls in flight; 0 = 4
	MaxSize        int64         // larger messages are not sent; 0 = 500 KiB
	User           string        // optional SPAMC User header (spamd's per-user settings)
	Metrics        *engines.Metrics
}

// Client talks to one spamd. It is safe for concurrent use.
type Client struct {
	addr    engines.Addr
	timeout time.Duration
	maxSize int64
	user    string
	limit   *engines.Limiter
	metrics *engines.Metrics
}

// New makes a client of the spamd at addr (tcp://host:port or
// unix:///path). It does not connect.
func New(addr string, o Options) (*Client, error) {
	a, err := engines.ParseAddr(addr, "tcp", "unix")
	if err != nil {
		return nil, fmt.Errorf("spamd: %w", err)
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("spamd %s: negative timeout %s", a, o.Timeout)
	case o.MaxConnections < 0:
		return nil, fmt.Errorf("spamd %s: negative max connections %d", a, o.MaxConnections)
	case o.MaxSize < 0:
		return nil, fmt.Errorf("spamd %s: negative max size %d", a, o.MaxSize)
	case strings.ContainsAny(o.User, "\r\n") || len(o.User) > 256:
		// It goes into a header line of the request.
		return nil, fmt.Errorf("spamd %s: user %q: no line breaks, at most 256 bytes", a, o.User)
	}
	c := &Client{addr: a, timeout: o.Timeout, maxSize: o.MaxSize, user: o.User, metrics: o.Metrics}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxSize == 0 {
		c.maxSize = DefaultMaxSize
	}
	n := o.MaxConnections
	if n == 0 {
		n = DefaultMaxConnections
	}
	c.limit = engines.NewLimiter(n)
	return c, nil
}

// Name is the engine's name in symbols, metrics and settings.
func (c *Client) Name() string { return engineName }

// Check sends the size bytes of r to spamd and returns its verdict. A
// size over MaxSize is an error wrapping engines.ErrTooLarge and nothing
// is sent.
func (c *Client) Check(ctx context.Context, r io.Reader, size int64) (rep Reply, err error) {
	start := time.Now()
	defer func() { c.metrics.Observe(engineName, start, err) }()
	switch {
	case size < 0:
		return Reply{}, fmt.Errorf("spamd %s: check: negative size %d", c.addr, size)
	case size > c.maxSize:
		return Reply{}, fmt.Errorf("spamd %s: check: message of %d bytes over max_size %d: %w",
			c.addr, size, c.maxSize, engines.ErrTooLarge)
	}
	release, err := c.limit.Acquire(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("spamd %s: check: %w", c.addr, err)
	}
	defer release()

	head := "REPORT SPAMC/1.5\r\nContent-length: " + strconv.FormatInt(size, 10) + "\r\n"
	if c.user != "" {
		head += "User: " + c.user + "\r\n"
	}
	head += "\r\n"
	rep, err = c.call(ctx, "check", head, r, size, readReply)
	return rep, err
}

// Ping asks spamd for PONG. It does not wait for a turn among the checks:
// a client busy with slow checks is not an engine that is down.
func (c *Client) Ping(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { c.metrics.Observe(engineName, start, err) }()
	_, err = c.call(ctx, "ping", "PING SPAMC/1.5\r\n\r\n", nil, 0, func(r io.Reader) (Reply, error) {
		return Reply{}, readPong(r)
	})
	return err
}

// Scan implements scanner.Engine: spamd's rules become SPAMD_<RULE>
// symbols with their points and its score the result's Score. A message
// over MaxSize is not sent and not an error: it is marked with
// SPAMD_SKIPPED_SIZE (spamc skips such messages silently).
func (c *Client) Scan(ctx context.Context, m *scanner.Message) (scanner.EngineResult, error) {
	if m == nil || m.Body == nil {
		return scanner.EngineResult{}, fmt.Errorf("spamd %s: scan: no message body", c.addr)
	}
	size := m.Body.Size()
	rep, err := c.Check(ctx, m.Body.Reader(), size)
	if errors.Is(err, engines.ErrTooLarge) {
		return scanner.EngineResult{Symbols: []scanner.Symbol{{
			Name:   SymbolSkippedSize,
			Detail: fmt.Sprintf("not scanned by spamd: %d bytes, over max_size %d", size, c.maxSize),
		}}}, nil
	}
	if err != nil {
		return scanner.EngineResult{}, err
	}
	return rep.result(), nil
}

// result maps a reply into mxgate's terms. The symbols add up to the
// score: spamd's Spam header is its authority, the table only itemises.
func (rep Reply) result() scanner.EngineResult {
	res := scanner.EngineResult{Score: rep.Score}
	var listed, slack float64
	for _, r := range rep.Rules {
		res.Symbols = append(res.Symbols, scanner.Symbol{Name: rulePrefix + r.Name, Score: r.Score, Detail: r.Description})
		listed += r.Score
		slack += tableRounding(r.Score)
	}
	if d := rep.Score - listed; d > slack+1e-6 || d < -slack-1e-6 {
		res.Symbols = append(res.Symbols, scanner.Symbol{
			Name:   SymbolUnlisted,
			Score:  d,
			Detail: fmt.Sprintf("spamd's score %.1f, its report's rules %.1f", rep.Score, listed),
		})
	}
	if rep.Spam {
		res.Symbols = append(res.Symbols, scanner.Symbol{
			Name:   SymbolSpam,
			Detail: fmt.Sprintf("spamd: Spam: True ; %.1f / %.1f", rep.Score, rep.Threshold),
		})
	}
	return res
}

// tableRounding is how far a rule's points in REPORT's table may be from
// its real points: one decimal below 10, whole numbers from 10 on.
func tableRounding(shown float64) float64 {
	if shown >= 10 || shown <= -10 {
		return 0.5
	}
	return 0.05
}

// call makes one exchange on a connection of its own: head, then size
// bytes of body (if any), then the end of our side, then read.
func (c *Client) call(ctx context.Context, what, head string, body io.Reader, size int64,
	read func(io.Reader) (Reply, error)) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.addr.Dial(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("spamd: %s: %w", what, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A cancel has no deadline: closing the connection ends a read or
	// write the caller no longer waits for.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	withCtx := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}

	sendErr := send(conn, head, body, size)
	var own bodyError
	if errors.As(sendErr, &own) {
		// No verdict to wait for on a message we could not send whole.
		return Reply{}, fmt.Errorf("spamd %s: %s: %w", c.addr, what, sendErr)
	}
	rep, err := read(conn)
	switch {
	case err == nil && sendErr == nil:
		return rep, nil
	case errors.Is(err, engines.ErrEngine):
		// spamd refused the request and closed: its reason is the error,
		// whether or not our write failed on the way.
		return Reply{}, fmt.Errorf("spamd %s: %s: %w", c.addr, what, err)
	case sendErr != nil:
		return Reply{}, fmt.Errorf("spamd %s: %s: send: %w", c.addr, what, withCtx(sendErr))
	default:
		return Reply{}, fmt.Errorf("spamd %s: %s: read reply: %w", c.addr, what, withCtx(err))
	}
}

// bodyError: reading the message being sent failed or it ended before
// its size, a failure on our side, not spamd's.
type bodyError struct{ error }

func (e bodyError) Unwrap() error { return e.error }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = bodyError{fmt.Errorf("read message: %w", err)}
	}
	return n, err
}

// send writes the request and then ends our side of the connection:
// spamd reads the body by lines and waits for the last one to end, so a
// message without a final line break is only judged once it sees EOF
// (spamc does the same).
func send(conn net.Conn, head string, body io.Reader, size int64) error {
	if _, err := io.WriteString(conn, head); err != nil {
		return err
	}
	if body != nil {
		n, err := io.Copy(conn, io.LimitReader(bodyReader{body}, size))
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", n, size, err)
		}
		if n < size {
			return bodyError{fmt.Errorf("message ended after %d of %d bytes", n, size)}
		}
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
