package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/scanner"
)

// Client scans messages on another node through its peer API. It
// implements scanner.Worker, so a remote node is one more Dispatcher
// member. It is safe for concurrent use and keeps connections alive
// between scans.
type Client struct {
	nodeID string
	target string
	addr   string
	url    string
	secret []byte
	hc     *http.Client
	now    func() time.Time
}

const (
	// maxVerdictBytes bounds a verdict body; a real one is a few KB.
	maxVerdictBytes = 1 << 20
	// maxErrorText is how much of an error body goes into the error.
	maxErrorText = 256
)

// NewClient returns a client that scans on the peer target (its node id)
// at addr (host:port), presenting itself as nodeID and signing with
// secret; the peer refuses a request signed for another id. Timeouts other
// than connecting come from the context of each Scan.
func NewClient(nodeID, target, addr, secret string) *Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// Never a proxy from the environment: peers talk directly on the
		// cluster network.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 64,
		// Below the server's idle timeout (2 min), so the client drops an
		// idle connection before the server closes it under a request.
		IdleConnTimeout:    60 * time.Second,
		DisableCompression: true,
		// A backstop for a peer that accepted the body and then hangs: the
		// scan itself is bounded by the peer pool's timeout (60 s by
		// default) and the caller's context.
		ResponseHeaderTimeout: 2 * time.Minute,
		WriteBufferSize:       64 << 10,
	}
	return &Client{
		nodeID: nodeID,
		target: target,
		addr:   addr,
		url:    "http://" + addr + Path,
		secret: []byte(secret),
		hc:     &http.Client{Transport: tr},
		now:    time.Now,
	}
}

// Addr is the peer's address.
func (c *Client) Addr() string { return c.addr }

// Close drops the idle connections (a member that left the cluster).
// Scans still running are not affected; the client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Scan sends m to the peer and returns its verdict. A refusal or a failure
// of the peer is an error (503 wraps scanner.ErrOverloaded), so that the
// Dispatcher tries another member. ctx bounds the whole exchange; ending
// it closes the connection, which cancels the scan on the peer.
func (c *Client) Scan(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
	req, nonce, err := c.newRequest(ctx, m)
	if err != nil {
		return scanner.Verdict{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: %w", c.addr, m.ID, err)
	}
	defer resp.Body.Close()
	return c.verdict(resp, nonce, m.ID)
}

// newRequest builds the signed request for m; the body is streamed from
// m.Body when sent.
func (c *Client) newRequest(ctx context.Context, m *scanner.Message) (*http.Request, string, error) {
	if m == nil || m.Body == nil {
		return nil, "", errors.New("peer scan: message without body")
	}
	env, err := encodeEnvelope(m)
	if err != nil {
		return nil, "", fmt.Errorf("peer scan %s: %w", m.ID, err)
	}
	envSHA := sha256.Sum256(env)
	// The body is read twice, for the hash and for sending; the spool
	// buffer is made for that, and nothing is copied into memory here.
	hash := sha256.New()
	if _, err := io.Copy(hash, m.Body.Reader()); err != nil {
		return nil, "", fmt.Errorf("peer scan %s: hash body: %w", m.ID, err)
	}
	var nb [nonceLen]byte
	rand.Read(nb[:]) // never fails (crypto/rand, Go 1.24+)
	a := requestAuth{
		node: c.nodeID, target: c.target,
		date:        strconv.FormatInt(c.now().UnixMilli(), 10),
		nonce:       hex.EncodeToString(nb[:]),
		envelopeSHA: hex.EncodeToString(envSHA[:]),
		bodySHA:     hex.EncodeToString(hash.Sum(nil)),
	}

	prefix := envelopePrefix(env)
	body := func() io.Reader {
		return io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(env), m.Body.Reader())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body())
	if err != nil {
		return nil, "", fmt.Errorf("peer scan %s: %w", m.ID, err)
	}
	req.ContentLength = int64(len(prefix)+len(env)) + m.Body.Size()
	// Lets the transport resend on a fresh connection when a kept-alive
	// one turns out dead before anything was written.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
	req.Header.Set("Content-Type", "application/octet-stream")
	a.set(req.Header, c.secret)
	return req, a.nonce, nil
}

// verdict reads the peer's answer to the request with nonce.
func (c *Client) verdict(resp *http.Response, nonce, id string) (scanner.Verdict, error) {
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorText))
		text := cleanLog(strings.TrimSpace(string(b)))
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: %w", c.addr, id, scanner.ErrOverloaded)
		case http.StatusNotFound:
			// A version 1 node has no /v2/scan.
			return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: %s: the peer does not speak peer protocol v2 (an older mxgate? upgrade it)", c.addr, id, resp.Status)
		}
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: %s: %s", c.addr, id, resp.Status, text)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVerdictBytes+1))
	if err != nil {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: read verdict: %w", c.addr, id, err)
	}
	if len(body) > maxVerdictBytes {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: verdict over %d bytes", c.addr, id, maxVerdictBytes)
	}
	if !macEqual(resp.Header.Get(HeaderSignature), verdictMAC(c.secret, nonce, body)) {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: verdict signature invalid", c.addr, id)
	}
	var w wireVerdict
	if err := json.Unmarshal(body, &w); err != nil {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: decode verdict: %w", c.addr, id, err)
	}
	v, err := fromWire(w)
	if err != nil {
		return scanner.Verdict{}, fmt.Errorf("peer %s: scan %s: %w", c.addr, id, err)
	}
	return v, nil
}
