// Package rspamd is the client of Rspamd: a message is checked with
// POST /checkv2 on the normal worker, and taught with /learnspam and
// /learnham on the controller. The client is a scanner.Engine.
package rspamd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
)

// Options tune a Client; the zero value is usable.
type Options struct {
	Timeout        time.Duration // per call, on top of the caller's deadline; 0 = 15s
	MaxConnections int           // calls in flight at once; 0 = 16
	// Controller is http://host:port of the controller, for learning; ""
	// = none (Learn is then an error).
	Controller string
	Password   string // the controller's password, if it wants one
	// MaxSize is the largest message sent to Rspamd; a larger one is not
	// sent (an error wrapping engines.ErrTooLarge: the scanner marks it
	// RSPAMD_TOO_LARGE). 0 = no limit.
	MaxSize int64
	Metrics *engines.Metrics
}

const (
	defaultTimeout  = 15 * time.Second
	defaultMaxConns = 16
	// maxReply bounds what is read of a reply: a normal /checkv2 reply is
	// a few KiB, one with every symbol and header some tens.
	maxReply = 1 << 20
	name     = "rspamd"
)

// Client talks to one Rspamd. Its methods are safe for concurrent use.
type Client struct {
	addr       engines.Addr
	controller *engines.Addr
	password   string
	timeout    time.Duration
	maxSize    int64
	limit      *engines.Limiter
	http       *http.Client
	metrics    *engines.Metrics
}

// New makes a client for the normal worker at addr (http://host:port).
func New(addr string, o Options) (*Client, error) {
	a, err := engines.ParseAddr(addr, "http")
	if err != nil {
		return nil, fmt.Errorf("rspamd: %w", err)
	}
	c := &Client{addr: a, password: o.Password, timeout: o.Timeout, maxSize: o.MaxSize, metrics: o.Metrics}
	if o.Controller != "" {
		ca, err := engines.ParseAddr(o.Controller, "http")
		if err != nil {
			return nil, fmt.Errorf("rspamd controller: %w", err)
		}
		c.controller = &ca
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	n := o.MaxConnections
	if n <= 0 {
		n = defaultMaxConns
	}
	c.limit = engines.NewLimiter(n)
	c.http = &http.Client{
		Transport: &http.Transport{
			// Never a proxy from the environment: the engine is where the
			// configuration says.
			Proxy:       nil,
			DialContext: (&net.Dialer{}).DialContext,
			// rspamd closes every connection after its reply (Connection:
			// close): keeping idle ones would only hold dead sockets.
			DisableKeepAlives: true,
			// The limiter bounds the scans; the one more is a health
			// ping's, which never waits for a scan's turn.
			MaxConnsPerHost:    n + 1,
			DisableCompression: true,
		},
		// A redirect is not an rspamd reply.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Request is the envelope and connection that Rspamd is told about.
type Request struct {
	IP       netip.Addr // the SMTP client's address; invalid = not sent
	Helo     string
	Hostname string // the client's name; "" sends "unknown" (see unknownClient)
	From     string // envelope sender; "" = the null sender
	Rcpts    []string
	QueueID  string
}

// unknownClient is the client name sent when it is not known. mxgate does
// not look up client names; without a Hostname rspamd would do the
// reverse lookup itself (0.3 s per message offline, measured), and
// "unknown" is what Postfix passes (milter {client_name}, XCLIENT) for a
// client whose name did not resolve, so rspamd's rules read it as such.
const unknownClient = "unknown"

// Check sends the message (size bytes from body) to /checkv2 and returns
// Rspamd's validated reply.
func (c *Client) Check(ctx context.Context, req Request, body io.Reader, size int64) (_ Reply, err error) {
	defer c.observe(time.Now(), &err)
	h := http.Header{}
	if req.IP.IsValid() {
		h.Set("IP", req.IP.Unmap().String())
	}
	if req.Helo != "" {
		h.Set("Helo", headerSafe(req.Helo))
	}
	host := req.Hostname
	if host == "" {
		host = unknownClient
	}
	h.Set("Hostname", headerSafe(host))
	from := req.From
	if from == "" {
		from = "<>"
	}
	h.Set("From", headerSafe(from))
	for _, r := range req.Rcpts {
		h.Add("Rcpt", headerSafe(r))
	}
	if req.QueueID != "" {
		h.Set("Queue-Id", headerSafe(req.QueueID))
	}
	status, b, err := c.call(ctx, c.addr, "/checkv2", h, body, size, true)
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: check: %w", c.addr, err)
	}
	if err := statusError(status, b); err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: check: %w", c.addr, err)
	}
	r, err := parseReply(b)
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: check: %w", c.addr, err)
	}
	return r, nil
}

// headerSafe replaces the control characters that an HTTP header cannot
// carry: the client's HELO is the client's to choose, and a request that
// cannot be sent would turn every message of that client into an engine
// error, and so into the engine's on_error action.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Learn teaches the controller's Bayes classifier that the message is
// spam (or ham). A message already learned so (208) is success.
func (c *Client) Learn(ctx context.Context, spam bool, body io.Reader, size int64) (err error) {
	path := "/learnham"
	if spam {
		path = "/learnspam"
	}
	if c.controller == nil {
		return fmt.Errorf("rspamd %s: %s: no controller configured", c.addr, path[1:])
	}
	defer c.observe(time.Now(), &err)
	h := http.Header{}
	if c.password != "" {
		h.Set("Password", c.password)
	}
	status, b, err := c.call(ctx, *c.controller, path, h, body, size, true)
	if err != nil {
		return fmt.Errorf("rspamd %s: %s: %w", c.controller, path[1:], err)
	}
	switch status {
	case http.StatusAlreadyReported:
		return nil
	case http.StatusNoContent:
		// What Rspamd answers when no classifier took the lesson: the
		// admin must hear that nothing was learned.
		return fmt.Errorf("rspamd %s: %s: nothing learned (HTTP 204): Rspamd's Bayes classifier needs its Redis backend: %w", c.controller, path[1:], engines.ErrEngine)
	}
	if err := statusError(status, b); err != nil {
		return fmt.Errorf("rspamd %s: %s: %w", c.controller, path[1:], err)
	}
	var ok struct {
		Success *bool `json:"success"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || ok.Success == nil || !*ok.Success {
		return fmt.Errorf("rspamd %s: %s: %w: reply %s", c.controller, path[1:], engines.ErrProtocol, quote(b))
	}
	return nil
}

// Ping asks the normal worker whether it answers (GET /ping → "pong").
func (c *Client) Ping(ctx context.Context) (err error) {
	defer c.observe(time.Now(), &err)
	// No turn of the limiter: an Rspamd busy with max_connections slow
	// scans is alive, and a ping that waited behind them would report it
	// down under load.
	status, b, err := c.call(ctx, c.addr, "/ping", nil, nil, -1, false)
	if err != nil {
		return fmt.Errorf("rspamd %s: ping: %w", c.addr, err)
	}
	if err := statusError(status, b); err != nil {
		return fmt.Errorf("rspamd %s: ping: %w", c.addr, err)
	}
	if string(bytes.TrimSpace(b)) != "pong" {
		return fmt.Errorf("rspamd %s: ping: %w: reply %s", c.addr, engines.ErrProtocol, quote(b))
	}
	return nil
}

// Name is the engine's name in symbols, metrics and settings.
func (c *Client) Name() string { return name }

// Scan checks m and maps Rspamd's reply into mxgate's terms.
func (c *Client) Scan(ctx context.Context, m *scanner.Message) (scanner.EngineResult, error) {
	if m.Body == nil {
		return scanner.EngineResult{}, fmt.Errorf("rspamd %s: check: message %s has no body", c.addr, m.ID)
	}
	if c.maxSize > 0 && m.Body.Size() > c.maxSize {
		return scanner.EngineResult{}, fmt.Errorf("rspamd %s: check: %d bytes, over max_size %d: %w", c.addr, m.Body.Size(), c.maxSize, engines.ErrTooLarge)
	}
	r, err := c.Check(ctx, Request{
		IP:       m.Env.ClientIP,
		Helo:     m.Env.Helo,
		Hostname: unknownClient,
		From:     m.Env.Sender,
		Rcpts:    m.Env.Recipients,
		QueueID:  m.ID,
	}, m.Body.Reader(), m.Body.Size())
	if err != nil {
		return scanner.EngineResult{}, err
	}
	return r.result(), nil
}

// observe counts the call that began at start and ended with *err.
func (c *Client) observe(start time.Time, err *error) { c.metrics.Observe(name, start, *err) }

// call sends one request within the client's deadline (and, limited, a
// turn of its limiter) and returns the status and the body (at most
// maxReply bytes; more is an error). A nil body is a GET.
func (c *Client) call(ctx context.Context, a engines.Addr, path string, h http.Header, body io.Reader, size int64, limited bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if limited {
		release, err := c.limit.Acquire(ctx)
		if err != nil {
			return 0, nil, err
		}
		defer release()
	}
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.Address+path, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxReply {
		return 0, nil, fmt.Errorf("%w: reply of %d bytes, more than the %d read", engines.ErrProtocol, resp.ContentLength, maxReply)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read reply: %w", err)
	}
	if len(b) > maxReply {
		return 0, nil, fmt.Errorf("%w: reply longer than the %d bytes read", engines.ErrProtocol, maxReply)
	}
	return resp.StatusCode, b, nil
}

// statusError is nil for 200; a 5xx is the engine's own error, anything
// else a reply not understood. rspamd puts its reason in {"error": "..."}.
func statusError(status int, body []byte) error {
	if status == http.StatusOK {
		return nil
	}
	why := quote(body)
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		why = quote([]byte(e.Error))
	}
	kind := engines.ErrProtocol
	if status >= 500 {
		kind = engines.ErrEngine
	}
	return fmt.Errorf("%w: HTTP status %d: %s", kind, status, why)
}

// quote is a bounded, printable rendering of outside text for errors.
func quote(b []byte) string {
	const max = 200
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "?"))
}
