package admin

import (
	"net/http"
	"net/http/httptest"
)

// LocalAPI gives pages that have authenticated their user themselves (the
// console's session, a recipient's signed link) a client of this server's
// API that calls it in process: the same validation, claims and audit
// records as the CLI, without a token or a network round trip. r is the
// page's request, whose client address goes into the audit trail with
// operator (see OperatorName; "" = none).
type LocalAPI func(r *http.Request, operator string) *Client

// localAPI implements LocalAPI on the unguarded routes.
func (s *Server) localAPI(r *http.Request, operator string) *Client {
	return &Client{
		Operator: operator,
		base:     "http://in-process",
		shown:    "this node's API",
		hc:       &http.Client{Transport: inProcess{h: s.api, remote: r.RemoteAddr}},
	}
}

// inProcess serves a request with a handler, as if it came from remote.
type inProcess struct {
	h      http.Handler
	remote string
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.RemoteAddr = t.remote
	req.RequestURI = req.URL.RequestURI()
	// The recorder holds the whole answer: the largest is a quarantined
	// message, bounded by smtp.max_message_bytes.
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
