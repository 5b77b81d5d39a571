// Package clamd is mxgate's client of the ClamAV daemon: zINSTREAM over
// TCP or a unix socket, one connection per scan, zPING for health.
//
// The served Go client sends 1 KiB chunks and sets no deadlines; this one
// streams the spooled message in 256 KiB chunks within the caller's
// deadline, checks the size against clamd's StreamMaxLength before it
// connects, and reads every reply it does not understand as an error,
// never as clean.
package clamd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
)

// Defaults of Options.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConnections = 8
	// DefaultStreamMax is clamd's own default StreamMaxLength.
	DefaultStreamMax = 25 << 20
)

const (
	engineName = "clamd"
	// chunkSize: clamd reads a chunk with one recv loop into its own
	// buffer; 256 KiB makes a 10 KB message one chunk and a 25 MiB one
	// 100 writes, against 25 600 with the served client's 1 KiB.
	chunkSize = 256 << 10
	// maxReply bounds what is read of a reply: clamd's longest is a
	// signature name and a few words.
	maxReply = 64 << 10
	// virusScore is the built-in EICAR_TEST symbol's score
	// (scanner/checks.go), so a virus scores the same whoever found it;
	// the action comes from Viruses, not from the score.
	virusScore = 10
	// SymbolVirus is the symbol a found virus gets; its detail is the
	// signature name.
	SymbolVirus = "CLAMD_VIRUS"
)

// Options of a Client.
type Options struct {
	// Timeout bounds one call, besides the caller's context (0 = 30 s).
	Timeout time.Duration
	// MaxConnections bounds the calls in flight to this clamd (0 = 8);
	// more wait for a turn within their deadline.
	MaxConnections int
	// StreamMax is the daemon's StreamMaxLength (0 = 25 MiB): a larger
	// message is not sent (ErrTooLarge), since clamd would cut the
	// stream.
	StreamMax int64
	// Metrics counts every call as engine "clamd" (nil: not counted).
	Metrics *engines.Metrics
}

// Client talks to one clamd. It is safe for concurrent use; every call has
// its own connection.
type Client struct {
	addr      engines.Addr
	timeout   time.Duration
	streamMax int64
	limiter   *engines.Limiter
	metrics   *engines.Metrics
	chunks    sync.Pool // *[]byte of 4+chunkSize: length prefix and data, one write
}

// New makes a client of the clamd at addr (tcp://host:port or
// unix:///path). It does not connect.
func New(addr string, o Options) (*Client, error) {
	a, err := engines.ParseAddr(addr, "tcp", "unix")
	if err != nil {
		return nil, fmt.Errorf("clamd: %w", err)
	}
	if o.Timeout < 0 || o.MaxConnections < 0 || o.StreamMax < 0 {
		return nil, fmt.Errorf("clamd %s: timeout, max connections and stream max must not be negative", a)
	}
	c := &Client{
		addr:      a,
		timeout:   orDefault(o.Timeout, DefaultTimeout),
		streamMax: orDefault(o.StreamMax, DefaultStreamMax),
		limiter:   engines.NewLimiter(orDefault(o.MaxConnections, DefaultMaxConnections)),
		metrics:   o.Metrics,
	}
	c.chunks.New = func() any { b := make([]byte, 4+chunkSize); return &b }
	return c, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Result is clamd's verdict on one stream.
type Result struct {
	// Virus is the signature name exactly as clamd gave it (a private
	// database's names end in ".UNOFFICIAL"); "" = nothing found.
	Virus string
}

// Name is "clamd".
func (c *Client) Name() string { return engineName }

// Scan streams m's body to clamd: a found virus is a virus and a
// CLAMD_VIRUS symbol; clean is an empty result; anything else an error.
func (c *Client) Scan(ctx context.Context, m *scanner.Message) (scanner.EngineResult, error) {
	if m == nil || m.Body == nil {
		return scanner.EngineResult{}, fmt.Errorf("clamd %s: scan: no message body", c.addr)
	}
	res, err := c.ScanStream(ctx, m.Body.Reader(), m.Body.Size())
	if err != nil || res.Virus == "" {
		return scanner.EngineResult{}, err
	}
	return scanner.EngineResult{
		Viruses: []string{res.Virus},
		Symbols: []scanner.Symbol{{Name: SymbolVirus, Score: virusScore, Detail: res.Virus}},
	}, nil
}

// ScanStream sends the size bytes of r to clamd with zINSTREAM and
// returns its verdict. A message over StreamMax is an error wrapping
// engines.ErrTooLarge without a connection, and so is clamd's own "size
// limit exceeded"; its other "... ERROR" replies wrap engines.ErrEngine;
// a reply not understood wraps engines.ErrProtocol.
func (c *Client) ScanStream(ctx context.Context, r io.Reader, size int64) (res Result, err error) {
	start := time.Now()
	defer func() { c.metrics.Observe(engineName, start, err) }()
	switch {
	case size < 0:
		return Result{}, fmt.Errorf("clamd %s: scan: negative size %d", c.addr, size)
	case size > c.streamMax:
		return Result{}, fmt.Errorf("clamd %s: scan: message of %d bytes over the stream limit of %d: %w",
			c.addr, size, c.streamMax, engines.ErrTooLarge)
	}
	reply, sendErr, err := c.call(ctx, "zINSTREAM", func(conn net.Conn) error { return c.stream(conn, r, size) }, true)
	if err != nil {
		return Result{}, err
	}
	res, err = parseReply(reply)
	if sendErr != nil && (errors.Is(err, engines.ErrProtocol) || err == nil && res.Virus == "") {
		// "OK" for a stream that was not sent whole is no verdict on
		// the message, and nothing else useful came back: the failed
		// send is what happened.
		return Result{}, fmt.Errorf("clamd %s: send stream: %w (clamd said %q)", c.addr, sendErr, trim(reply))
	}
	if err != nil {
		return Result{}, fmt.Errorf("clamd %s: scan: %w", c.addr, err)
	}
	return res, nil
}

// Ping asks clamd for PONG. It takes no turn of the limiter: a clamd busy
// with MaxConnections slow scans is alive, and a health check that waited
// behind them would report it down under load.
func (c *Client) Ping(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { c.metrics.Observe(engineName, start, err) }()
	reply, _, err := c.call(ctx, "zPING", nil, false)
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd %s: ping: reply %q, want PONG: %w", c.addr, trim(reply), engines.ErrProtocol)
	}
	return nil
}

// call sends cmd on a connection of its own, then send's data (if any),
// and reads the one NUL-terminated reply. A failed send is returned apart
// (sendErr) with whatever reply followed it: clamd answers a stream over
// its limit and closes the connection, so the write fails first.
func (c *Client) call(ctx context.Context, cmd string, send func(net.Conn) error, limited bool) (reply string, sendErr, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if limited {
		release, err := c.limiter.Acquire(ctx)
		if err != nil {
			return "", nil, fmt.Errorf("clamd %s: %s: %w", c.addr, cmd, err)
		}
		defer release()
	}
	conn, err := c.addr.Dial(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("clamd: %s: %w", cmd, err)
	}
	defer conn.Close()
	// The deadline bounds every read and write; closing on ctx's end
	// also stops a call whose caller gave up (a cancel has no deadline).
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ctxErr := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}

	if _, err := io.WriteString(conn, cmd+"\x00"); err != nil {
		sendErr = ctxErr(err)
	} else if send != nil {
		if err := send(conn); err != nil {
			var src readError
			if errors.As(err, &src) {
				// Our own body failed: no verdict to wait for.
				return "", nil, fmt.Errorf("clamd %s: %s: %w", c.addr, cmd, err)
			}
			sendErr = ctxErr(err)
		}
	}
	reply, err = readReply(conn)
	if err != nil {
		if sendErr != nil && errors.Is(err, engines.ErrProtocol) {
			return "", nil, fmt.Errorf("clamd %s: send %s: %w", c.addr, cmd, sendErr)
		}
		if sendErr != nil {
			return "", nil, fmt.Errorf("clamd %s: send %s: %w; read reply: %w", c.addr, cmd, sendErr, ctxErr(err))
		}
		return "", nil, fmt.Errorf("clamd %s: %s: read reply: %w", c.addr, cmd, ctxErr(err))
	}
	return reply, sendErr, nil
}

// readError is a failure to read the message being sent, not a failure
// of clamd or the connection.
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// stream sends r as INSTREAM chunks (4-byte big-endian length, data) and
// the zero-length chunk that ends it. Exactly size bytes are sent: a body
// that ends early is an error, so clamd never judges a different message.
func (c *Client) stream(conn net.Conn, r io.Reader, size int64) error {
	bp := c.chunks.Get().(*[]byte)
	defer c.chunks.Put(bp)
	buf := *bp
	r = io.LimitReader(r, size)
	var sent int64
	for {
		n, err := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, werr := conn.Write(buf[:4+n]); werr != nil {
				return fmt.Errorf("after %d of %d bytes: %w", sent, size, werr)
			}
			sent += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return readError{fmt.Errorf("read message: %w", err)}
		}
	}
	if sent != size {
		return readError{fmt.Errorf("read message: ended after %d of %d bytes", sent, size)}
	}
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return fmt.Errorf("end of stream: %w", err)
	}
	return nil
}

// readReply reads one NUL-terminated reply of at most maxReply bytes.
// Empty, cut short (EOF before the NUL) or longer is ErrProtocol; a read
// error is returned as it is (timeouts keep their kind).
func readReply(r io.Reader) (string, error) {
	var reply []byte
	chunk := make([]byte, 4096)
	for {
		n, err := r.Read(chunk)
		reply = append(reply, chunk[:n]...)
		if i := bytes.IndexByte(reply, 0); i >= 0 && i <= maxReply {
			if i == 0 {
				return "", fmt.Errorf("empty reply: %w", engines.ErrProtocol)
			}
			return string(reply[:i]), nil
		}
		if len(reply) > maxReply {
			return "", fmt.Errorf("reply over %d KiB without its end: %w", maxReply>>10, engines.ErrProtocol)
		}
		switch {
		case errors.Is(err, io.EOF) && len(reply) == 0:
			return "", fmt.Errorf("connection closed without a reply: %w", engines.ErrProtocol)
		case errors.Is(err, io.EOF):
			return "", fmt.Errorf("reply %q cut short (no NUL at its end): %w", trim(string(reply)), engines.ErrProtocol)
		case err != nil:
			return "", err
		}
	}
}

// parseReply reads clamd's answer to zINSTREAM: "stream: OK",
// "stream: NAME FOUND", "... ERROR" (clamd's own failure; "INSTREAM size
// limit exceeded. ERROR" is the message over StreamMaxLength).
func parseReply(reply string) (Result, error) {
	if !printable(reply) {
		return Result{}, fmt.Errorf("reply %q with control or non-ASCII bytes: %w", trim(reply), engines.ErrProtocol)
	}
	switch {
	case strings.HasSuffix(reply, " ERROR"):
		if strings.Contains(reply, "size limit exceeded") {
			return Result{}, fmt.Errorf("clamd says %q: %w", trim(reply), engines.ErrTooLarge)
		}
		return Result{}, fmt.Errorf("%w: %q", engines.ErrEngine, trim(reply))
	case reply == "stream: OK":
		return Result{}, nil
	}
	// Prefix and suffix cut one after the other: in "stream: FOUND" they
	// share the space, and "FOUND" is no signature name.
	if rest, ok := strings.CutPrefix(reply, "stream: "); ok {
		if name, ok := strings.CutSuffix(rest, " FOUND"); ok {
			if name == "" || strings.TrimSpace(name) != name {
				return Result{}, fmt.Errorf("reply %q names no signature: %w", trim(reply), engines.ErrProtocol)
			}
			return Result{Virus: name}, nil
		}
	}
	return Result{}, fmt.Errorf("reply %q not understood: %w", trim(reply), engines.ErrProtocol)
}

// printable: a reply fit for logs and headers (clamd's replies and
// signature names are printable ASCII).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// trim shortens a reply for an error message.
func trim(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
