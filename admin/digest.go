package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mxgate/mxgate/digest"
)

// Digest is the recipients' quarantine digest (package digest) as the API
// drives it.
type Digest interface {
	// Send sends today's digests now, to rcpt only when it is not "";
	// still once per recipient and day.
	Send(ctx context.Context, rcpt string) ([]digest.Outcome, error)
	// SetOptOut stops (out) or resumes rcpt's digests.
	SetOptOut(ctx context.Context, rcpt string, out bool) error
	OptOuts(ctx context.Context) ([]string, error)
	// RotateKey adds a new signing key for the links and returns its id
	// and the ids of the keys dropped (older than the links' lifetime).
	RotateKey(ctx context.Context) (id string, dropped []string, err error)
}

// DigestOutcome is what a send did for one recipient.
type DigestOutcome = digest.Outcome

// DigestKeyResult is the answer to a key rotation.
type DigestKeyResult struct {
	ID      string   `json:"id"`
	Dropped []string `json:"dropped,omitempty"`
}

func (s *Server) digest(w http.ResponseWriter) bool {
	if s.o.Digest == nil {
		writeError(w, http.StatusNotFound, "this node has no quarantine digest")
		return false
	}
	return true
}

func (s *Server) digestErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	var bad badRequest
	switch {
	case errors.Is(err, digest.ErrOff):
		writeError(w, http.StatusConflict, digest.ErrOff.Error())
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.Error())
	default:
		s.internal(w, r, what, err)
	}
}

func (s *Server) digestRcpt(w http.ResponseWriter, r *http.Request, required bool) (string, bool) {
	rcpt := strings.TrimSpace(r.URL.Query().Get("rcpt"))
	if rcpt == "" && !required {
		return "", true
	}
	var v string
	if err := addrParam(url.Values{"rcpt": {rcpt}}, "rcpt", &v); err != nil || !strings.Contains(v, "@") || strings.HasPrefix(v, "@") {
		writeError(w, http.StatusBadRequest, "rcpt: want an address (local@domain), got "+strconv.Quote(rcpt))
		return "", false
	}
	return v, true
}

func (s *Server) digestSend(w http.ResponseWriter, r *http.Request) {
	if !s.digest(w) {
		return
	}
	rcpt, ok := s.digestRcpt(w, r, false)
	if !ok {
		return
	}
	out, err := s.o.Digest.Send(r.Context(), rcpt)
	if err != nil {
		s.digestErr(w, r, "send digests", err)
		return
	}
	s.log.Info("digests sent on demand", "by", s.who(r), "rcpt", rcpt, "recipients", len(out))
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) digestOptOut(w http.ResponseWriter, r *http.Request) {
	if !s.digest(w) {
		return
	}
	rcpt, ok := s.digestRcpt(w, r, true)
	if !ok {
		return
	}
	out, err := boolParam(r.URL.Query(), "out")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.o.Digest.SetOptOut(r.Context(), rcpt, out); err != nil {
		s.digestErr(w, r, "digest opt-out", err)
		return
	}
	s.log.Info("digest opt-out changed", "rcpt", rcpt, "opted_out", out, "by", s.who(r))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) digestOptOuts(w http.ResponseWriter, r *http.Request) {
	if !s.digest(w) {
		return
	}
	out, err := s.o.Digest.OptOuts(r.Context())
	if err != nil {
		s.digestErr(w, r, "list digest opt-outs", err)
		return
	}
	if out == nil {
		out = []string{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) digestRotate(w http.ResponseWriter, r *http.Request) {
	if !s.digest(w) {
		return
	}
	id, dropped, err := s.o.Digest.RotateKey(r.Context())
	if err != nil {
		s.digestErr(w, r, "rotate the digest key", err)
		return
	}
	s.log.Info("digest signing key rotated", "key", id, "dropped", dropped, "by", s.who(r))
	writeJSON(w, http.StatusOK, DigestKeyResult{ID: id, Dropped: dropped})
}

// DigestSend sends today's digests now (rcpt "" = every recipient with
// new quarantined mail), once per recipient and day.
func (c *Client) DigestSend(ctx context.Context, rcpt string) ([]digest.Outcome, error) {
	q := url.Values{}
	set(q, "rcpt", rcpt)
	var out []DigestOutcome
	err := c.call(ctx, http.MethodPost, "/api/v1/digest/send", q, nil, &out)
	return out, err
}

// DigestOptOut stops (out) or resumes the digests of rcpt.
func (c *Client) DigestOptOut(ctx context.Context, rcpt string, out bool) error {
	q := url.Values{"rcpt": {rcpt}, "out": {boolText(out)}}
	return c.call(ctx, http.MethodPost, "/api/v1/digest/optout", q, nil, nil)
}

// DigestOptOuts lists the recipients who get no digest.
func (c *Client) DigestOptOuts(ctx context.Context) ([]string, error) {
	var out []string
	err := c.call(ctx, http.MethodGet, "/api/v1/digest/optouts", nil, nil, &out)
	return out, err
}

// DigestRotateKey adds a new signing key for the digest's links.
func (c *Client) DigestRotateKey(ctx context.Context) (DigestKeyResult, error) {
	var res DigestKeyResult
	err := c.call(ctx, http.MethodPost, "/api/v1/digest/rotate-key", nil, nil, &res)
	return res, err
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
