// Package peer is the scan API between cluster nodes: the master streams a
// message to another node's scanner pool over HTTP and gets the verdict
// back. Server is the receiving side, Client (a scanner.Worker) the
// sending one, so a remote node is just one more member of the master's
// scanner.Dispatcher.
//
// Every request is authenticated with the cluster secret (HMAC-SHA256 over
// method, path, caller and target node ids, date, nonce and the SHA-256 of
// the envelope and of the message) and used once: it is refused by every
// node but its target, the date must be within ±30 s of the server's clock
// (and not before the server started, for the first minute), and the nonce
// must not have been seen within the last 60 s — by this process, and by
// any node through the shared store when the cluster has one. All of that
// is checked on the headers alone, before a byte of the body is read, and
// every header an unauthenticated caller can send fits in a few KB (the
// server refuses more with 431), so an unauthenticated, misdirected, stale
// or replayed request costs the server a few KB and never reaches the
// scanner. The verdict is signed as well, over the request's nonce, so
// that a verdict cannot be forged or replayed by anyone on the path: a
// forged "deliver" would let a virus through.
//
// Wire format (version 2), request:
//
//	POST /v2/scan HTTP/1.1
//	Content-Length: 4 + envelope length + message length
//	X-Mxgate-Node: n1                       caller's node id
//	X-Mxgate-Target: n2                     the node meant to scan it
//	X-Mxgate-Date: 1717322400000            unix milliseconds
//	X-Mxgate-Nonce: 32 hex digits           16 random bytes
//	X-Mxgate-Envelope-Sha256: 64 hex digits SHA-256 of the envelope JSON
//	X-Mxgate-Body-Sha256: 64 hex digits     SHA-256 of the message
//	X-Mxgate-Signature: hex(HMAC-SHA256(secret, "POST\n/v2/scan\n"+node+"\n"+
//	    target+"\n"+date+"\n"+nonce+"\n"+envelopesha+"\n"+bodysha))
//
//	envelope length, 4 bytes big-endian (at most 1 MiB)
//	envelope JSON
//	raw RFC 5322 message
//
// The envelope is read only once the headers are authenticated, and
// decoded only once its bytes match the signed SHA-256. Its JSON (unknown
// fields ignored; strings bounded, valid UTF-8, no control characters):
//
//	{"id":"q1","envelope":{"client_ip":"192.0.2.7","helo":"mail.example.com",
//	 "sender":"a@example.com","recipients":["b@example.org"]},"allowlisted":false}
//
// Response 200, signed with
//
//	X-Mxgate-Signature: hex(HMAC-SHA256(secret, "VERDICT\n"+nonce+"\n"+body))
//
// and a body of scanner.Verdict's fields (an unknown action is refused):
//
//	{"action":"quarantine","class":"spam","score":10,
//	 "symbols":[{"name":"GTUBE","score":10,"detail":"MIME part 1"}],
//	 "viruses":[],"reason":"...","node":"n2"}
//
// Errors are short text/plain bodies: 400 bad input, 401 unauthenticated
// (body "replayed" or "stale" where that is the reason), 408 body too slow,
// 410 a version 1 request (/v1/scan: its envelope travelled in a header),
// 413 too large, 421 signed for another node, 431 headers too large (net/http),
// 503 overloaded or too many connections, 500 scan failed. Every refusal
// before the body was read closes the connection.
//
// Version 1 sent the envelope base64-encoded in a header, so the server
// had to accept half a megabyte of headers from anyone before it could
// authenticate them; it also did not sign the target node. A version 1
// node calling a version 2 node gets 410 (or 431 for a large envelope); a
// version 2 node calling a version 1 node gets 404. Both are failures the
// dispatcher retries on another member: upgrade every node.
package peer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mxgate/mxgate/scanner"
)

// Path is the one route of the peer API; the version is in it, so that a
// node of another version is refused by the router before anything is
// parsed.
const Path = "/v2/scan"

// oldPath is version 1's route, refused with a clear answer.
const oldPath = "/v1/scan"

// Header names of the protocol.
const (
	HeaderNode        = "X-Mxgate-Node"
	HeaderTarget      = "X-Mxgate-Target"
	HeaderDate        = "X-Mxgate-Date"
	HeaderNonce       = "X-Mxgate-Nonce"
	HeaderEnvelopeSHA = "X-Mxgate-Envelope-Sha256"
	HeaderBodySHA     = "X-Mxgate-Body-Sha256"
	HeaderSignature   = "X-Mxgate-Signature"
)

const (
	// dateWindow is how far a request's date may be from the server's
	// clock: NTP keeps cluster nodes well within it, and it bounds how
	// long a nonce must be remembered.
	dateWindow = 30 * time.Second
	// nonceTTL covers the whole window in which a date is accepted: a
	// nonce first seen at the earliest moment its date passes (date-30 s)
	// stays remembered until its date stops passing (date+30 s).
	nonceTTL = 2 * dateWindow
	// maxNonces bounds the local replay cache (about 64 bytes an entry,
	// so ~17 MB at worst): 262144 requests in 60 s is over 4000 scans a
	// second on one node, beyond what a node scans. When it is full new
	// requests are refused as overloaded (the master tries another
	// member) rather than forgetting nonces, which would allow replays.
	maxNonces = 1 << 18
	nonceLen  = 16
	// maxHeaderBytes bounds everything a caller sends before it is
	// authenticated (net/http adds 4 KB of slack): a real request's
	// headers are about 600 bytes.
	maxHeaderBytes = 8 << 10
	// maxNodeIDLen is members' bound on a node id.
	maxNodeIDLen = 64
	// maxDateLen is enough digits for any unix millisecond time.
	maxDateLen = 19
)

// Limits of the envelope; SMTP's own limits are far lower (RFC 5321
// §4.5.3.1), these only keep a bad peer's request bounded. 1 MiB holds
// 10000 recipients of 100 bytes.
const (
	maxIDLen         = 256
	maxFieldLen      = 1024
	maxRecipients    = 10000
	maxEnvelopeBytes = 1 << 20
	// envelopeLenSize is the length prefix before the envelope.
	envelopeLenSize = 4
)

// requestAuth is what a request's signature covers, the header values
// exactly as sent: the server checks them before it reads the body, and
// decodes nothing that is not covered.
type requestAuth struct {
	node, target, date, nonce, envelopeSHA, bodySHA string
}

func authFromHeader(h http.Header) requestAuth {
	return requestAuth{
		node: h.Get(HeaderNode), target: h.Get(HeaderTarget), date: h.Get(HeaderDate),
		nonce: h.Get(HeaderNonce), envelopeSHA: h.Get(HeaderEnvelopeSHA), bodySHA: h.Get(HeaderBodySHA),
	}
}

// wellFormed is a cheap check of the shapes before the MAC is computed.
// Node ids cannot hold a newline (they come from HTTP header values), so
// the fields cannot be shifted against each other in the MAC input.
func (a requestAuth) wellFormed() bool {
	return a.node != "" && len(a.node) <= maxNodeIDLen &&
		a.target != "" && len(a.target) <= maxNodeIDLen &&
		a.date != "" && len(a.date) <= maxDateLen &&
		isHex(a.nonce, 2*nonceLen) && isHex(a.envelopeSHA, 2*sha256.Size) && isHex(a.bodySHA, 2*sha256.Size)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// mac is the signature of a request. "POST\n/v2/scan\n" keeps it apart
// from a verdict's ("VERDICT\n") and from version 1's, which had no node
// ids.
func (a requestAuth) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, "POST\n"+Path+"\n")
	for _, f := range []string{a.node, a.target, a.date, a.nonce, a.envelopeSHA} {
		io.WriteString(m, f)
		io.WriteString(m, "\n")
	}
	io.WriteString(m, a.bodySHA)
	return m.Sum(nil)
}

// set writes the fields and their signature into h.
func (a requestAuth) set(h http.Header, secret []byte) {
	h.Set(HeaderNode, a.node)
	h.Set(HeaderTarget, a.target)
	h.Set(HeaderDate, a.date)
	h.Set(HeaderNonce, a.nonce)
	h.Set(HeaderEnvelopeSHA, a.envelopeSHA)
	h.Set(HeaderBodySHA, a.bodySHA)
	h.Set(HeaderSignature, hex.EncodeToString(a.mac(secret)))
}

// verdictMAC signs a verdict body; the request's nonce ties it to that
// request. "VERDICT" cannot be confused with a request's "POST".
func verdictMAC(secret []byte, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, "VERDICT\n")
	io.WriteString(m, nonce)
	io.WriteString(m, "\n")
	m.Write(body)
	return m.Sum(nil)
}

// macEqual compares a hex MAC from a header with the expected one in
// constant time; malformed hex is simply unequal.
func macEqual(hexMAC string, want []byte) bool {
	got, err := hex.DecodeString(hexMAC)
	if err != nil {
		return false
	}
	return hmac.Equal(got, want)
}

// wireEnvelope is the envelope's JSON.
type wireEnvelope struct {
	ID          string      `json:"id"`
	Envelope    wireEnvAddr `json:"envelope"`
	Allowlisted bool        `json:"allowlisted"`
	// An older peer ignores it and applies the attachment policy: the
	// safe side.
	SkipAttachments bool `json:"skip_attachments,omitempty"`
	// The front end's findings before DATA (DNSBL); an older peer
	// ignores them and scores the message without.
	Symbols []wireSymbol `json:"symbols,omitempty"`
}

type wireEnvAddr struct {
	ClientIP   netip.Addr `json:"client_ip"` // "" when unknown
	Helo       string     `json:"helo"`
	Sender     string     `json:"sender"` // "" = null reverse path
	Recipients []string   `json:"recipients"`
}

// encodeEnvelope renders the envelope JSON of m.
func encodeEnvelope(m *scanner.Message) ([]byte, error) {
	w := wireEnvelope{
		ID: m.ID,
		Envelope: wireEnvAddr{
			ClientIP: m.Env.ClientIP, Helo: m.Env.Helo, Sender: m.Env.Sender,
			Recipients: m.Env.Recipients,
		},
		Allowlisted:     m.Allowlisted,
		SkipAttachments: m.Allowlisted && m.SkipAttachments,
	}
	for _, sym := range m.Symbols {
		w.Symbols = append(w.Symbols, wireSymbol(sym))
	}
	if w.Envelope.Recipients == nil {
		w.Envelope.Recipients = []string{}
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if len(b) > maxEnvelopeBytes {
		return nil, fmt.Errorf("envelope: %d bytes encoded, limit %d", len(b), maxEnvelopeBytes)
	}
	return b, nil
}

// envelopePrefix is the length prefix sent before env.
func envelopePrefix(env []byte) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 0, envelopeLenSize), uint32(len(env)))
}

// readEnvelope reads the length-prefixed envelope at the start of a body:
// never more than envelopeLenSize+maxEnvelopeBytes bytes, and nothing past
// the envelope.
func readEnvelope(r io.Reader) ([]byte, error) {
	var p [envelopeLenSize]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return nil, fmt.Errorf("envelope length: %w", err)
	}
	n := binary.BigEndian.Uint32(p[:])
	if n == 0 || n > maxEnvelopeBytes {
		return nil, fmt.Errorf("envelope: length %d, want 1 to %d", n, maxEnvelopeBytes)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return b, nil
}

// decodeEnvelope parses an envelope into the fields of a Message (Body
// left nil). It accepts exactly what encodeEnvelope produces: one JSON
// object, fields within their limits. Unknown JSON fields are ignored so
// that a newer node can add some.
func decodeEnvelope(raw []byte) (scanner.Message, error) {
	if len(raw) > maxEnvelopeBytes {
		return scanner.Message{}, fmt.Errorf("envelope: %d bytes, limit %d", len(raw), maxEnvelopeBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var w wireEnvelope
	if err := dec.Decode(&w); err != nil {
		return scanner.Message{}, fmt.Errorf("envelope: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return scanner.Message{}, errors.New("envelope: data after the JSON object")
	}
	if err := w.validate(); err != nil {
		return scanner.Message{}, err
	}
	if w.Envelope.Recipients == nil {
		w.Envelope.Recipients = []string{} // as encodeEnvelope sends none
	}
	var syms []scanner.Symbol
	for _, sym := range w.Symbols {
		syms = append(syms, scanner.Symbol(sym))
	}
	return scanner.Message{
		Symbols: syms,
		ID:      w.ID,
		Env: scanner.Envelope{
			ClientIP: w.Envelope.ClientIP, Helo: w.Envelope.Helo, Sender: w.Envelope.Sender,
			Recipients: w.Envelope.Recipients,
		},
		Allowlisted:     w.Allowlisted,
		SkipAttachments: w.Allowlisted && w.SkipAttachments,
	}, nil
}

// validate keeps fields to what an SMTP session can produce: bounded,
// valid UTF-8 (SMTPUTF8), no control characters. The scanner and its logs
// can then treat them like local ones.
func (w wireEnvelope) validate() error {
	if err := checkField("id", w.ID, maxIDLen); err != nil {
		return err
	}
	if err := checkField("helo", w.Envelope.Helo, maxFieldLen); err != nil {
		return err
	}
	if err := checkField("sender", w.Envelope.Sender, maxFieldLen); err != nil {
		return err
	}
	if n := len(w.Envelope.Recipients); n > maxRecipients {
		return fmt.Errorf("envelope: %d recipients, limit %d", n, maxRecipients)
	}
	for _, r := range w.Envelope.Recipients {
		if r == "" {
			return errors.New("envelope: empty recipient")
		}
		if err := checkField("recipient", r, maxFieldLen); err != nil {
			return err
		}
	}
	if len(w.Symbols) > maxWireSymbols {
		return fmt.Errorf("envelope: %d symbols, limit %d", len(w.Symbols), maxWireSymbols)
	}
	for _, sym := range w.Symbols {
		if err := checkField("symbol", sym.Name, maxSymbolLen); err != nil {
			return err
		}
		if err := checkField("symbol detail", sym.Detail, maxFieldLen); err != nil {
			return err
		}
		if math.IsNaN(sym.Score) || math.IsInf(sym.Score, 0) || math.Abs(sym.Score) > scanner.MaxThreshold {
			return fmt.Errorf("envelope: symbol %s scores %g", sym.Name, sym.Score)
		}
	}
	return nil
}

// Bounds of the front end's symbols in an envelope (one per DNSBL zone).
const (
	maxWireSymbols = 64
	maxSymbolLen   = 64
)

func checkField(name, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("envelope: %s of %d bytes, limit %d", name, len(v), limit)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("envelope: %s is not valid UTF-8", name)
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("envelope: %s has a control character at %d", name, i)
	}
	return nil
}

// nonceCache remembers the nonces of accepted requests for nonceTTL, at
// most max of them.
type nonceCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	seen map[[nonceLen]byte]struct{}
	// fifo holds the same nonces in insertion order, from head on; since
	// every entry lives ttl, the oldest expires first and pruning only
	// ever looks at the front.
	fifo []nonceEntry
	head int
}

type nonceEntry struct {
	nonce   [nonceLen]byte
	expires time.Time
}

func newNonceCache(ttl time.Duration, max int) *nonceCache {
	return &nonceCache{ttl: ttl, max: max, seen: make(map[[nonceLen]byte]struct{})}
}

// errNonceCacheFull means max nonces are live: the request is refused
// rather than a nonce forgotten early.
var errNonceCacheFull = errors.New("replay cache full")

// add records nonce at now. It reports false when the nonce was seen within
// ttl, and errNonceCacheFull when it cannot be remembered.
func (c *nonceCache) add(nonce [nonceLen]byte, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.fifo) && !c.fifo[c.head].expires.After(now) {
		delete(c.seen, c.fifo[c.head].nonce)
		c.fifo[c.head] = nonceEntry{}
		c.head++
	}
	// Reuse the dead front once it is most of the slice, so the slice
	// stays within about twice the live entries.
	if c.head > 0 && c.head >= len(c.fifo)/2 {
		n := copy(c.fifo, c.fifo[c.head:])
		clear(c.fifo[n:])
		c.fifo = c.fifo[:n]
		c.head = 0
	}
	if _, dup := c.seen[nonce]; dup {
		return false, nil
	}
	if len(c.seen) >= c.max {
		return false, errNonceCacheFull
	}
	c.seen[nonce] = struct{}{}
	c.fifo = append(c.fifo, nonceEntry{nonce: nonce, expires: now.Add(c.ttl)})
	return true, nil
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// wireVerdict is the JSON of a verdict: scanner.Verdict's fields.
type wireVerdict struct {
	Action  string       `json:"action"`
	Class   string       `json:"class"`
	Score   float64      `json:"score"`
	Symbols []wireSymbol `json:"symbols"`
	Viruses []string     `json:"viruses"`
	Reason  string       `json:"reason"`
	Node    string       `json:"node"`
	// ExtraHeaders: absent from an older peer's verdict (none), ignored by
	// an older peer.
	ExtraHeaders []string `json:"extra_headers,omitempty"`
}

type wireSymbol struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Detail string  `json:"detail"`
}

func toWire(v scanner.Verdict) wireVerdict {
	w := wireVerdict{
		Action: string(v.Action), Class: v.Class, Score: v.Score,
		Symbols: make([]wireSymbol, 0, len(v.Symbols)),
		Viruses: v.Viruses, Reason: v.Reason, Node: v.Node, ExtraHeaders: v.ExtraHeaders,
	}
	for _, s := range v.Symbols {
		w.Symbols = append(w.Symbols, wireSymbol{Name: s.Name, Score: s.Score, Detail: s.Detail})
	}
	if w.Viruses == nil {
		w.Viruses = []string{}
	}
	return w
}

// fromWire checks a peer's verdict: only the actions the gateway knows (an
// unknown one must not fall through to delivery somewhere).
func fromWire(w wireVerdict) (scanner.Verdict, error) {
	switch a := scanner.Action(w.Action); a {
	case scanner.ActionDeliver, scanner.ActionQuarantine, scanner.ActionReject, scanner.ActionTempfail:
	default:
		return scanner.Verdict{}, fmt.Errorf("verdict: unknown action %q", w.Action)
	}
	v := scanner.Verdict{
		Action: scanner.Action(w.Action), Class: w.Class, Score: w.Score,
		Viruses: w.Viruses, Reason: w.Reason, Node: w.Node, ExtraHeaders: w.ExtraHeaders,
	}
	if len(w.Symbols) > 0 {
		v.Symbols = make([]scanner.Symbol, 0, len(w.Symbols))
		for _, s := range w.Symbols {
			v.Symbols = append(v.Symbols, scanner.Symbol{Name: s.Name, Score: s.Score, Detail: s.Detail})
		}
	}
	if len(v.Viruses) == 0 {
		v.Viruses = nil
	}
	return v, nil
}
