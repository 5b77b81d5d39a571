package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
)

// Client talks to a node's admin API.
type Client struct {
	// Operator is sent as OperatorHeader: who the requests are made for
	// (see OperatorName); "" sends none.
	Operator string

	base  string // without a trailing slash
	shown string // base without its password, for messages
	token string
	hc    *http.Client
}

// Error is an error answer of the admin API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's explanation.
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// QuarantineQuery filters Client.QuarantineList. Rcpt and Sender are an
// address, @domain or .domain (the domain and its subdomains). Since and
// Until are a duration before now on the server ("24h", "7d"), a date
// ("2026-12-02", 00:00 UTC), today, yesterday or an RFC 3339 time; Day
// (today, yesterday or a date) is that whole UTC day instead. Subject is
// a case-insensitive part of the subject. Before pages: the
// quarantine.CursorOf(item).String() of the previous page's last item
// lists what comes after it.
type QuarantineQuery struct {
	Rcpt, Sender, Verdict string
	Subject               string
	Since, Until, Day     string
	Before                string
	Limit                 int // 0 = the server's default (1000)
}

// LogQuery filters Client.Log, its fields as in QuarantineQuery.
type LogQuery struct {
	ID, Sender, Rcpt, Action string
	Since, Until, Day        string
	Limit                    int
}

const (
	// maxJSONAnswer bounds a decoded answer: the largest is 10000 log
	// records.
	maxJSONAnswer = 256 << 20
	// maxRawAnswer bounds a downloaded message.
	maxRawAnswer = 1 << 30
	// clientTimeout backs up the caller's context: a release waits for the
	// downstream server, so it is generous.
	clientTimeout = 5 * time.Minute
)

// NewClient makes a client for the admin API at baseURL (such as
// http://127.0.0.1:8025); token "" sends no Authorization header.
func NewClient(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		// The parser's own error would quote the password.
		return nil, fmt.Errorf("admin URL %q: want http://host:port or https://host:port", hideUserinfo(baseURL))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http://host:port or https://host:port", u.Redacted())
	}
	return &Client{
		base:  strings.TrimRight(u.String(), "/"),
		shown: strings.TrimRight(u.Redacted(), "/"),
		token: token,
		hc:    &http.Client{},
	}, nil
}

// Addr is the admin API's URL as messages show it, without a password.
func (c *Client) Addr() string { return c.shown }

// hideUserinfo blanks what stands between "://" and the last "@" of a URL
// that does not parse, where a password would be.
func hideUserinfo(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i+3 <= at {
		start = i + 3
	}
	return s[:start] + "xxxxx" + s[at:]
}

// QuarantineList lists quarantined messages, newest first.
func (c *Client) QuarantineList(ctx context.Context, q QuarantineQuery) ([]quarantine.Item, error) {
	v := url.Values{}
	set(v, "rcpt", q.Rcpt)
	set(v, "sender", q.Sender)
	set(v, "verdict", q.Verdict)
	set(v, "subject", q.Subject)
	set(v, "since", q.Since)
	set(v, "until", q.Until)
	set(v, "day", q.Day)
	set(v, "before", q.Before)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []quarantine.Item
	err := c.call(ctx, http.MethodGet, "/api/v1/quarantine", v, nil, &out)
	return out, err
}

// QuarantineGet returns one quarantined message's metadata.
func (c *Client) QuarantineGet(ctx context.Context, id string) (quarantine.Item, error) {
	var it quarantine.Item
	err := c.call(ctx, http.MethodGet, "/api/v1/quarantine/"+url.PathEscape(id), nil, nil, &it)
	return it, err
}

// QuarantineRaw returns one quarantined message as received.
func (c *Client) QuarantineRaw(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	err := c.call(ctx, http.MethodGet, "/api/v1/quarantine/"+url.PathEscape(id)+"/raw", nil, nil, &raw)
	return raw, err
}

// ReleaseOptions modify a release.
type ReleaseOptions struct {
	// Force delivers again a message released (or being released) before.
	Force bool
	// LearnHam teaches the spam engine (Rspamd's controller) the message
	// as ham once it is delivered.
	LearnHam bool
	// Rcpts releases to these of the message's recipients only; empty =
	// to all. Each recipient is released once (Force aside).
	Rcpts []string
}

// QuarantineRelease delivers a quarantined message to its recipients.
// A message released (or being released) already is refused with 409
// unless o.Force is set: then it is delivered again.
func (c *Client) QuarantineRelease(ctx context.Context, id string, o ReleaseOptions) (ReleaseResult, error) {
	q := url.Values{}
	if o.Force {
		q.Set("force", "true")
	}
	if o.LearnHam {
		q.Set("learn", "ham")
	}
	for _, r := range o.Rcpts {
		q.Add("rcpt", r)
	}
	var res ReleaseResult
	err := c.call(ctx, http.MethodPost, "/api/v1/quarantine/"+url.PathEscape(id)+"/release", q, nil, &res)
	return res, err
}

// QuarantineLearn teaches the spam engine (Rspamd's controller) a
// quarantined message as spam, or as ham, without releasing it.
func (c *Client) QuarantineLearn(ctx context.Context, id string, spam bool) (LearnResult, error) {
	as := "ham"
	if spam {
		as = "spam"
	}
	var res LearnResult
	err := c.call(ctx, http.MethodPost, "/api/v1/quarantine/"+url.PathEscape(id)+"/learn", url.Values{"as": {as}}, nil, &res)
	return res, err
}

// QuarantineDelete deletes a quarantined message.
func (c *Client) QuarantineDelete(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/quarantine/"+url.PathEscape(id), nil, nil, nil)
}

// Lists returns every block and allow entry.
func (c *Client) Lists(ctx context.Context) ([]lists.Entry, error) {
	var out []lists.Entry
	err := c.call(ctx, http.MethodGet, "/api/v1/lists", nil, nil, &out)
	return out, err
}

// ListAdd adds an entry and returns it as stored (normalised), or the
// entry that was there already, unchanged, with Existing set.
func (c *Client) ListAdd(ctx context.Context, req ListRequest) (ListAddResult, error) {
	var res ListAddResult
	err := c.call(ctx, http.MethodPost, "/api/v1/lists", nil, req, &res)
	return res, err
}

// ListRemove removes an entry; rcpt "" is the global entry.
func (c *Client) ListRemove(ctx context.Context, kind lists.Kind, value, rcpt string) error {
	v := url.Values{"kind": {string(kind)}, "value": {value}}
	set(v, "rcpt", rcpt)
	return c.call(ctx, http.MethodDelete, "/api/v1/lists", v, nil, nil)
}

// Log searches the message log, newest first.
func (c *Client) Log(ctx context.Context, q LogQuery) ([]msglog.Record, error) {
	v := url.Values{}
	set(v, "id", q.ID)
	set(v, "sender", q.Sender)
	set(v, "rcpt", q.Rcpt)
	set(v, "action", q.Action)
	set(v, "since", q.Since)
	set(v, "until", q.Until)
	set(v, "day", q.Day)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []msglog.Record
	err := c.call(ctx, http.MethodGet, "/api/v1/log", v, nil, &out)
	return out, err
}

// Status decodes the node's status (GET /api/v1/status) into out.
func (c *Client) Status(ctx context.Context, out any) error {
	return c.call(ctx, http.MethodGet, "/api/v1/status", nil, nil, out)
}

// ClusterStatus decodes the node's VRRP status into out.
func (c *Client) ClusterStatus(ctx context.Context, out any) error {
	return c.call(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, out)
}

// Config returns the current cluster-wide configuration.
func (c *Client) Config(ctx context.Context) (clusterconf.Revision, error) {
	var rev clusterconf.Revision
	err := c.call(ctx, http.MethodGet, "/api/v1/config", nil, nil, &rev)
	return rev, err
}

// SetConfig stores new cluster-wide settings as the next revision.
func (c *Client) SetConfig(ctx context.Context, req ConfigRequest) (clusterconf.Revision, error) {
	var rev clusterconf.Revision
	err := c.call(ctx, http.MethodPut, "/api/v1/config", nil, req, &rev)
	return rev, err
}

// PushConfig announces the current revision again to every node.
func (c *Client) PushConfig(ctx context.Context) (PushResult, error) {
	var res PushResult
	err := c.call(ctx, http.MethodPost, "/api/v1/config/push", nil, nil, &res)
	return res, err
}

// ConfigHistory lists revisions newest first; limit 0 = 20.
func (c *Client) ConfigHistory(ctx context.Context, limit int) ([]clusterconf.Revision, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var revs []clusterconf.Revision
	err := c.call(ctx, http.MethodGet, "/api/v1/config/history", q, nil, &revs)
	return revs, err
}

// Report returns the report of day (YYYY-MM-DD; "" = yesterday, UTC).
func (c *Client) Report(ctx context.Context, day string) (ReportResult, error) {
	q := url.Values{}
	set(q, "day", day)
	var res ReportResult
	err := c.call(ctx, http.MethodGet, "/api/v1/report", q, nil, &res)
	return res, err
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

// call does one request. out may be nil (no body expected), *[]byte (the
// raw body) or a pointer to decode JSON into.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, q, in, clientTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxRawAnswer+1))
		if err != nil {
			return fmt.Errorf("read answer of %s %s: %w", method, path, err)
		}
		if len(b) > maxRawAnswer {
			return fmt.Errorf("answer of %s %s larger than %d bytes", method, path, maxRawAnswer)
		}
		*o = b
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONAnswer)).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// readError turns an error answer into *Error, with the server's message
// when it sent one and the status text otherwise (a proxy in between).
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		e.Message = eb.Error
	} else if line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); line != "" && len(line) <= 200 {
		e.Message = line
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// send does one request and returns a successful answer, whose body the
// caller closes; an error answer is *Error. in is nil, a rawBody or a
// value to send as JSON. timeout bounds the whole exchange, the body's
// reading included (0 = only ctx does).
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any, timeout time.Duration) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	raw, isRaw := in.(rawBody)
	if isRaw {
		body = raw.Reader
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("admin request: %w", err)
	}
	switch {
	case isRaw:
		req.Header.Set("Content-Type", "message/rfc822")
	case in != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.Operator != "" {
		req.Header.Set(OperatorHeader, c.Operator)
	}
	hc := *c.hc
	hc.Timeout = timeout
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error repeats the method and URL; say it once, our way.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.shown, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}
