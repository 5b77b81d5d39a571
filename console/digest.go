package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/digest"
)

func (c *Console) digestRoutes() {
	c.mux.HandleFunc("GET /digest", c.authed(c.digestPage))
	c.mux.HandleFunc("POST /digest/send", c.authed(c.digestSend))
	c.mux.HandleFunc("POST /digest/optout", c.authed(c.digestOptOut))
	c.mux.HandleFunc("POST /digest/rotate-key", c.authed(c.digestRotate))
}

type digestData struct {
	Settings config.Digest
	Revision int64
	OptOuts  []string
	Failed   string
	// Sent is the outcome of a send from this page, shown in place.
	Sent    []digest.Outcome
	SentFor string
}

func (c *Console) digestView(r *http.Request, s *session) digestData {
	var d digestData
	api := c.client(r, s)
	rev, err := api.Config(r.Context())
	if err != nil {
		d.Failed = apiMessage(err)
		return d
	}
	d.Settings, d.Revision = rev.Settings.Digest, rev.Number
	if d.OptOuts, err = api.DigestOptOuts(r.Context()); err != nil {
		d.Failed = apiMessage(err)
	}
	return d
}

func (c *Console) digestPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "digest", "Digests", c.digestView(r, s))
}

// digestSend sends today's digests now (all recipients, or one), each at
// most once per day as the scheduler's, and shows every outcome.
func (c *Console) digestSend(w http.ResponseWriter, r *http.Request, s *session) {
	rcpt := strings.TrimSpace(r.PostFormValue("rcpt"))
	out, err := c.client(r, s).DigestSend(r.Context(), rcpt)
	target := rcpt
	if target == "" {
		target = "every recipient"
	}
	if err != nil {
		c.done(w, r, s, "digest send", target, err, "", "/digest")
		return
	}
	sent, failed := 0, 0
	for _, o := range out {
		switch o.Result {
		case digest.Sent:
			sent++
		case digest.Failed:
			failed++
		}
	}
	var outcomeErr error
	if failed > 0 {
		outcomeErr = fmt.Errorf("%d of %d digests failed", failed, len(out))
	}
	c.audit(r, s, "digest send", target, outcomeErr)
	d := c.digestView(r, s)
	d.Sent, d.SentFor = out, target
	c.render(w, r, s, http.StatusOK, "digest", "Digests", d)
}

func (c *Console) digestOptOut(w http.ResponseWriter, r *http.Request, s *session) {
	rcpt := strings.TrimSpace(r.PostFormValue("rcpt"))
	out := r.PostFormValue("out") != "in"
	err := c.client(r, s).DigestOptOut(r.Context(), rcpt, out)
	action, ok := "digest opt-out", rcpt+" gets no more digests"
	if !out {
		action, ok = "digest opt-in", rcpt+" gets digests again"
	}
	c.done(w, r, s, action, rcpt, err, ok, "/digest")
}

func (c *Console) digestRotate(w http.ResponseWriter, r *http.Request, s *session) {
	res, err := c.client(r, s).DigestRotateKey(r.Context())
	c.done(w, r, s, "digest rotate-key", "", err, fmt.Sprintf("New signing key %s; links signed before stay valid until they expire", res.ID), "/digest")
}
