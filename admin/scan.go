package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
)

// ScanQuery is the envelope a message is scanned with (POST /api/v1/scan,
// `mxgate scan`): what the checks that look at the envelope see. Every
// field is optional.
type ScanQuery struct {
	From  string     // MAIL FROM
	Rcpts []string   // RCPT TO
	IP    netip.Addr // the client's address (default 127.0.0.1)
	Helo  string     // its HELO name
}

// ScanResult is the verdict on a scanned message: what the SMTP front end
// would have done with it, and why.
type ScanResult struct {
	Action  string       `json:"action"`
	Class   string       `json:"class"`
	Score   float64      `json:"score"`
	Reason  string       `json:"reason,omitempty"`
	Node    string       `json:"node"`
	Viruses []string     `json:"viruses,omitempty"`
	Symbols []ScanSymbol `json:"symbols"`
	// Headers are those a delivered message would carry.
	Headers []string `json:"headers"`
	Size    int64    `json:"size"`
}

// ScanSymbol is one finding of a scan.
type ScanSymbol struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Detail string  `json:"detail,omitempty"`
}

// scanMemLimit is how much of a message to scan is held in memory; the
// rest goes to a temporary file, as SMTP's spool does.
const scanMemLimit = 1 << 20

// scan runs the body through the node's scanning pipeline without
// delivering, quarantining or logging anything.
func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	if s.o.Scan == nil {
		writeError(w, http.StatusNotFound, "scanning is not available on this node")
		return
	}
	q := r.URL.Query()
	env := scanner.Envelope{Sender: q.Get("from"), Recipients: q["rcpt"], Helo: q.Get("helo"), ClientIP: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	if v := q.Get("ip"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "ip: not an IP address: "+strconv.Quote(v))
			return
		}
		env.ClientIP = ip.Unmap()
	}
	if len(env.Recipients) > maxScanRcpts {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("rcpt: at most %d recipients", maxScanRcpts))
		return
	}
	limit := s.o.MaxScanBytes
	sw := spool.NewWriter(s.o.SpoolDir, scanMemLimit)
	n, err := io.Copy(sw, io.LimitReader(r.Body, limit+1))
	if err != nil {
		sw.Abort()
		writeError(w, http.StatusBadRequest, "reading the message: "+err.Error())
		return
	}
	if n > limit {
		sw.Abort()
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("message larger than %d bytes (smtp.max_message_bytes)", limit))
		return
	}
	if n == 0 {
		sw.Abort()
		writeError(w, http.StatusBadRequest, "empty message: send the raw message (RFC 5322) as the request body")
		return
	}
	body := sw.Finish()
	defer body.Close()
	v, err := s.o.Scan(r.Context(), &scanner.Message{ID: "admin-scan", Env: env, Body: body})
	switch {
	case errors.Is(err, scanner.ErrOverloaded):
		writeError(w, http.StatusServiceUnavailable, "scanner overloaded, try again")
		return
	case err != nil:
		if r.Context().Err() != nil {
			return
		}
		s.log.Warn("admin scan failed", "err", err)
		writeError(w, http.StatusBadGateway, "scan failed: "+err.Error())
		return
	}
	res := ScanResult{
		Action: string(v.Action), Class: v.Class, Score: v.Score, Reason: v.Reason, Node: v.Node,
		Viruses: v.Viruses, Symbols: make([]ScanSymbol, 0, len(v.Symbols)), Headers: v.Headers(), Size: n,
	}
	for _, sym := range v.Symbols {
		res.Symbols = append(res.Symbols, ScanSymbol{Name: sym.Name, Score: sym.Score, Detail: sym.Detail})
	}
	writeJSON(w, http.StatusOK, res)
}

// maxScanRcpts bounds the recipients of a scan request (the URL carries
// them).
const maxScanRcpts = 100

// Scan runs the raw message read from body through the node's scanning
// pipeline and returns the verdict; nothing is delivered, quarantined or
// logged.
func (c *Client) Scan(ctx context.Context, body io.Reader, q ScanQuery) (ScanResult, error) {
	v := url.Values{}
	set(v, "from", q.From)
	set(v, "helo", q.Helo)
	for _, r := range q.Rcpts {
		v.Add("rcpt", r)
	}
	if q.IP.IsValid() {
		v.Set("ip", q.IP.String())
	}
	var res ScanResult
	err := c.call(ctx, http.MethodPost, "/api/v1/scan", v, rawBody{body}, &res)
	return res, err
}

// rawBody is a request body sent as it is (a message), not as JSON.
type rawBody struct{ io.Reader }
