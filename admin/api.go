package admin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mxgate/mxgate/addrmatch"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
)

// ReleaseResult is the answer to a release.
type ReleaseResult struct {
	ID string `json:"id"`
	// Reply is the downstream server's reply to the delivery.
	Reply      string    `json:"reply"`
	ReleasedAt time.Time `json:"released_at"`
	// PreviousRelease is when the message had been released before; zero
	// when this was the first release.
	PreviousRelease time.Time `json:"previous_release,omitzero"`
	// Warning is set when the message was delivered but something after
	// that failed (recording the release, learning it as ham).
	Warning string `json:"warning,omitempty"`
	// Learned is "ham" when the release taught the spam engine so.
	Learned string `json:"learned,omitempty"`
	// By is who released it, as the admin API names the actor.
	By string `json:"by"`
	// Forced is set when this release overrode an earlier one (force=true):
	// Overridden is that release, or the claim of one that never finished.
	Forced     bool                `json:"forced,omitempty"`
	Overridden *quarantine.Release `json:"overridden,omitempty"`
	// Rcpts are the recipients it was released to; empty = all.
	Rcpts []string `json:"rcpts,omitempty"`
}

// ListRequest is the body of POST /api/v1/lists.
type ListRequest struct {
	Kind    lists.Kind `json:"kind"`
	Value   string     `json:"value"`
	Rcpt    string     `json:"rcpt,omitempty"`
	Comment string     `json:"comment,omitempty"`
	// SkipAttachments: an allow entry that also waives the attachment
	// policy (allow entries only).
	SkipAttachments bool `json:"skip_attachments,omitempty"`
}

// ListAddResult is the answer to POST /api/v1/lists: the entry as stored,
// with status 201, or, when an equal entry (same kind, value and
// recipient, in any case) was there already, that entry unchanged with
// Existing set and status 200.
type ListAddResult struct {
	lists.Entry
	Existing bool `json:"existing"`
}

// maxComment bounds a list entry's comment.
const maxComment = 500

// maxFilter bounds an address filter: longer than any address can be.
const maxFilter = 512

// safeID is the id form that may go into a Content-Disposition file name.
var safeID = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// verdicts are the classes a quarantined message can have.
var verdicts = []string{"spam", "virus", "banned", "unscannable", "engine_failed", "policy"}

// badRequest is an input error; its text names the field.
type badRequest string

func (b badRequest) Error() string { return string(b) }

func badf(format string, args ...any) error { return badRequest(fmt.Sprintf(format, args...)) }

func (s *Server) quarantineList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := quarantine.Filter{}
	err := errors.Join(
		addrParam(q, "rcpt", &f.Rcpt),
		addrParam(q, "sender", &f.Sender),
		textParam(q, "verdict", &f.Verdict),
		textParam(q, "subject", &f.Subject),
		cursorParam(q, "before", &f.Before),
		s.rangeParams(q, &f.Since, &f.Until),
		limitParam(q, quarantine.MaxLimit, &f.Limit),
	)
	if err == nil && f.Verdict != "" && !slices.Contains(verdicts, strings.ToLower(f.Verdict)) {
		err = badf("verdict: %q is not one of %s", f.Verdict, strings.Join(verdicts, ", "))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, oneLine(err))
		return
	}
	items, err := s.o.Quarantine.List(r.Context(), f)
	if err != nil {
		s.internal(w, r, "list quarantine", err)
		return
	}
	if items == nil {
		items = []quarantine.Item{}
	}
	writeJSON(w, http.StatusOK, items)
}

// item fetches the {id} of the request, answering 400 or 404 itself when
// it returns false. The id is looked up as given, then in upper case:
// queue ids are upper-case hex, and an operator types or pastes them in
// any case.
func (s *Server) item(w http.ResponseWriter, r *http.Request) (quarantine.Item, bool) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return quarantine.Item{}, false
	}
	it, err := s.o.Quarantine.Get(r.Context(), id)
	if up := strings.ToUpper(id); errors.Is(err, quarantine.ErrNotFound) && up != id {
		it, err = s.o.Quarantine.Get(r.Context(), up)
	}
	if errors.Is(err, quarantine.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", id))
		return quarantine.Item{}, false
	}
	if err != nil {
		s.internal(w, r, "read quarantine", err)
		return quarantine.Item{}, false
	}
	return it, true
}

func (s *Server) quarantineGet(w http.ResponseWriter, r *http.Request) {
	if it, ok := s.item(w, r); ok {
		writeJSON(w, http.StatusOK, it)
	}
}

func (s *Server) quarantineRaw(w http.ResponseWriter, r *http.Request) {
	it, ok := s.item(w, r)
	if !ok {
		return
	}
	id := it.ID
	raw, err := s.o.Quarantine.Raw(r.Context(), id)
	if errors.Is(err, quarantine.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", id))
		return
	}
	if err != nil {
		s.internal(w, r, "read quarantined message", err)
		return
	}
	name := "message.eml"
	if safeID.MatchString(id) {
		name = id + ".eml"
	}
	h := w.Header()
	h.Set("Content-Type", "message/rfc822")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

// quarantineRelease delivers a held message once to each recipient: the
// release is claimed in the store before the delivery, so concurrent
// releases get 409 naming the first, and a second copy needs force=true.
// rcpt (repeatable) releases to some of the recipients only; each
// recipient is released once. Every way out of the delivery ends the
// claim: recorded when the downstream took the message, given back when
// it certainly did not, kept when nobody can tell (see
// deliver.ErrUnconfirmed), so that no second copy goes out unasked.
func (s *Server) quarantineRelease(w http.ResponseWriter, r *http.Request) {
	if s.o.Release == nil {
		writeError(w, http.StatusNotImplemented, "releasing is not available on this node")
		return
	}
	q := r.URL.Query()
	force, err := boolParam(q, "force")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	learnHam := false
	switch v := q.Get("learn"); v {
	case "":
	case "ham":
		if s.o.Learn == nil {
			writeError(w, http.StatusNotImplemented, errNoLearning)
			return
		}
		learnHam = true
	default:
		writeError(w, http.StatusBadRequest, "learn: want ham, got "+strconv.Quote(v))
		return
	}
	found, ok := s.item(w, r)
	if !ok {
		return
	}
	id := found.ID
	rcpts, err := found.CheckRcpts(q["rcpt"])
	if err != nil {
		writeError(w, http.StatusBadRequest, "rcpt: "+oneLine(err))
		return
	}
	ctx := r.Context()
	claim := quarantine.Release{Token: rand.Text(), By: s.who(r), Node: s.o.NodeID, At: s.now().UTC(), Forced: force, Rcpts: rcpts}
	it, err := s.o.Quarantine.ClaimRelease(ctx, id, claim)
	switch {
	case errors.Is(err, quarantine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", id))
		return
	case errors.Is(err, quarantine.ErrReleaseConflict):
		s.log.Info("quarantine release refused: released or being released already", "id", id, "by", claim.By, "rcpts", rcpts)
		writeError(w, http.StatusConflict, releaseConflict(id, it, claim, s.now()))
		return
	case err != nil:
		s.internal(w, r, "claim quarantine release", err)
		return
	}
	targets := it.Targets(claim)
	overridden := previousRelease(it, targets)
	claim.Forced = overridden != nil
	if claim.Forced {
		s.log.Warn("quarantine release forced: a second copy", "id", id, "by", claim.By, "rcpts", rcpts,
			"overrides", overridden.By, "overridden_at", overridden.At, "overridden_done", overridden.Done)
	}
	raw, err := s.o.Quarantine.Raw(ctx, id)
	if err != nil {
		s.giveBack(ctx, id, claim)
		if errors.Is(err, quarantine.ErrNotFound) {
			// Deleted since the claim.
			writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", id))
			return
		}
		s.internal(w, r, "read quarantined message", err)
		return
	}
	send := it
	send.Recipients = targets
	reply, err := s.o.Release(ctx, send, raw)
	if err != nil && reply == "" {
		// The downstream's answer is what the operator needs to act on, so
		// unlike store errors it is shown.
		if errors.Is(err, deliver.ErrUnconfirmed) {
			s.log.Error("quarantine release outcome unknown: the claim stays", "id", id, "by", claim.By, "err", err)
			writeError(w, http.StatusBadGateway, fmt.Sprintf("release %s: %s; the message may have been delivered, so the release stays claimed: check the downstream, then release again with --force (API: force=true) if it did not arrive", id, oneLine(err)))
			return
		}
		s.log.Warn("quarantine release failed", "id", id, "by", claim.By, "err", err)
		msg := fmt.Sprintf("release %s: delivery failed: %s", id, oneLine(err))
		if !s.giveBack(ctx, id, claim) {
			msg += "; the release claim could not be given back (see the node's log), so the next release needs --force"
		}
		writeError(w, http.StatusBadGateway, msg)
		return
	}
	res := ReleaseResult{ID: id, Reply: reply, ReleasedAt: s.now().UTC(), By: claim.By, Forced: claim.Forced, Overridden: overridden, Rcpts: rcpts}
	done := it
	done.Claim = nil // a completed release only
	if p := previousRelease(done, targets); p != nil {
		res.PreviousRelease = p.Done
	}
	if err != nil {
		// Delivered to some recipients: it counts as released, so that a
		// second release does not send those a second copy.
		s.log.Warn("quarantine release partly refused", "id", id, "err", err)
		res.Warning = "delivered, but " + oneLine(err)
	}
	// The message is delivered now: a client that went away must not stop
	// the release from being recorded.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeGrace)
	defer cancel()
	claim.Done = res.ReleasedAt
	if err := s.o.Quarantine.FinishRelease(mctx, id, claim, true); err != nil {
		s.log.Error("quarantine release not recorded: the claim stays", "id", id, "err", err)
		note := "recording the release failed (see the node's log), so the release stays claimed and the next one needs --force"
		if res.Warning == "" {
			res.Warning = "delivered, but " + note
		} else {
			res.Warning += "; " + note
		}
	}
	s.record(mctx, it, msglog.ActionRelease, targets, claim.By, reply)
	if learnHam {
		// Delivered already: a failed lesson is a warning to act on, not
		// a failed release.
		if err := s.o.Learn(mctx, false, raw); err != nil {
			s.log.Warn("learning a released message as ham failed", "id", id, "err", err)
			note := "learning it as ham failed: " + oneLine(err)
			if res.Warning == "" {
				res.Warning = "delivered, but " + note
			} else {
				res.Warning += "; " + note
			}
		} else {
			res.Learned = "ham"
		}
	}
	s.log.Info("quarantine released", "id", id, "by", claim.By, "rcpts", targets, "forced", claim.Forced, "reply", reply, "previous_release", res.PreviousRelease, "learned", res.Learned)
	writeJSON(w, http.StatusOK, res)
}

// record writes an operator's action on a quarantined message to the
// message log, under the message's id, so that `mxgate log --id` tells
// its whole story. The action is done: a log that cannot be written is
// the node's problem to report, not the operator's.
func (s *Server) record(ctx context.Context, it quarantine.Item, action string, rcpts []string, by, reply string) {
	rec := msglog.Record{
		ID: it.ID, Time: s.now().UTC(), ClientIP: it.ClientIP, Helo: it.Helo,
		Sender: it.Sender, Recipients: rcpts, Size: it.Size, Action: action,
		Verdict: it.Verdict, Score: it.Score, Node: s.o.NodeID, Downstream: reply,
		QuarantineID: it.ID, By: by,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeGrace)
	defer cancel()
	if err := s.o.Log.Append(ctx, rec); err != nil {
		s.log.Error("quarantine action not written to the message log", "id", it.ID, "action", action, "by", by, "err", err)
	}
}

// errNoLearning answers a lesson asked of a node without a learning engine.
const errNoLearning = "learning needs Rspamd's controller: set scanner.rspamd_controller"

// LearnResult is the answer to POST /api/v1/quarantine/{id}/learn.
type LearnResult struct {
	ID      string `json:"id"`
	Learned string `json:"learned"` // spam or ham
	By      string `json:"by"`
}

// quarantineLearn teaches the spam engine a quarantined message as spam
// (or ham) without releasing it.
func (s *Server) quarantineLearn(w http.ResponseWriter, r *http.Request) {
	if s.o.Learn == nil {
		writeError(w, http.StatusNotImplemented, errNoLearning)
		return
	}
	as := r.URL.Query().Get("as")
	if as != "spam" && as != "ham" {
		writeError(w, http.StatusBadRequest, "as: want spam or ham, got "+strconv.Quote(as))
		return
	}
	it, ok := s.item(w, r)
	if !ok {
		return
	}
	id := it.ID
	raw, err := s.o.Quarantine.Raw(r.Context(), id)
	switch {
	case errors.Is(err, quarantine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", id))
		return
	case err != nil:
		s.internal(w, r, "read quarantined message", err)
		return
	}
	if err := s.o.Learn(r.Context(), as == "spam", raw); err != nil {
		s.log.Warn("learning failed", "id", id, "as", as, "err", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("learn %s as %s: %s", id, as, oneLine(err)))
		return
	}
	by := s.who(r)
	s.log.Info("quarantined message learned", "id", id, "as", as, "by", by)
	writeJSON(w, http.StatusOK, LearnResult{ID: id, Learned: as, By: by})
}

// storeGrace bounds the store writes that end a release after its client
// went away.
const storeGrace = 10 * time.Second

// giveBack ends a claim whose delivery certainly did not happen, so that a
// plain release works again; it reports whether that worked (if not, the
// claim stays and only a forced release goes ahead: fail closed).
func (s *Server) giveBack(ctx context.Context, id string, claim quarantine.Release) bool {
	// Also when the client went away: a claim left behind needs --force.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeGrace)
	defer cancel()
	if err := s.o.Quarantine.FinishRelease(ctx, id, claim, false); err != nil && !errors.Is(err, quarantine.ErrNotFound) {
		s.log.Error("quarantine release claim not given back", "id", id, "err", err)
		return false
	}
	return true
}

// previousRelease is what a claim on it for targets overrides: its open
// claim, else the last release to any of targets; nil when there is
// neither.
func previousRelease(it quarantine.Item, targets []string) *quarantine.Release {
	if it.Claim != nil {
		c := *it.Claim
		return &c
	}
	if last, ok := it.LastReleaseTo(targets); ok {
		return &last
	}
	if slices.ContainsFunc(targets, it.IsReleasedTo) {
		return &quarantine.Release{By: "an earlier release", Done: it.Released}
	}
	return nil
}

// releaseConflict says why the release want was refused, naming the
// release in the way.
func releaseConflict(id string, cur quarantine.Item, want quarantine.Release, now time.Time) string {
	const again = "use --force (API: force=true) to deliver a second copy"
	targets := cur.Targets(want)
	if c := cur.Claim; c != nil {
		to := ""
		if len(c.Rcpts) > 0 {
			to = " to " + strings.Join(c.Rcpts, ", ")
		}
		if want.Forced {
			// Forced, yet refused: the open claim delivers to someone
			// the new release leaves out.
			return fmt.Sprintf("release of %s refused: %s claimed it for release%s at %s and that release has not finished, "+
				"so a forced release must deliver to those recipients too: force the release of all of them (without --rcpt, or with --rcpt for each)",
				id, c.By, to, stamp(c.At))
		}
		return fmt.Sprintf("release of %s refused: %s claimed it for release%s at %s (%s ago) and that release has not finished: "+
			"it is under way, or it was interrupted (its node stopped, or lost the store or the downstream's answer) and the message may have been delivered; "+
			"wait for it, or check the downstream and %s",
			id, c.By, to, stamp(c.At), now.Sub(c.At).Round(time.Second), again)
	}
	var done []string
	for _, t := range targets {
		if cur.IsReleasedTo(t) {
			done = append(done, t)
		}
	}
	whom := ""
	if len(done) < len(cur.Recipients) {
		whom = " to " + strings.Join(done, ", ")
	}
	hint := again
	if rest := cur.Unreleased(); len(rest) > 0 {
		hint = "release the others with --rcpt (API: rcpt=) " + strings.Join(rest, ", ") + ", or " + again
	}
	if last, ok := cur.LastReleaseTo(done); ok {
		return fmt.Sprintf("release of %s refused: it was released%s already, by %s at %s; %s", id, whom, last.By, stamp(last.Done), hint)
	}
	return fmt.Sprintf("release of %s refused: it was released%s already, at %s; %s", id, whom, stamp(cur.Released), hint)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badf("%s: want true or false, got %q", name, v)
	}
	return b, nil
}

func (s *Server) quarantineDelete(w http.ResponseWriter, r *http.Request) {
	it, ok := s.item(w, r)
	if !ok {
		return
	}
	err := s.o.Quarantine.Delete(r.Context(), it.ID)
	if errors.Is(err, quarantine.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no quarantined message with id %q", it.ID))
		return
	}
	if err != nil {
		s.internal(w, r, "delete quarantined message", err)
		return
	}
	by := s.who(r)
	s.log.Info("quarantine deleted", "id", it.ID, "by", by)
	s.record(r.Context(), it, msglog.ActionDelete, it.Recipients, by, "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listsAll(w http.ResponseWriter, r *http.Request) {
	all, err := s.o.Lists.All(r.Context())
	if err != nil {
		s.internal(w, r, "read lists", err)
		return
	}
	if all == nil {
		all = []lists.Entry{}
	}
	writeJSON(w, http.StatusOK, all)
}

func (s *Server) listsAdd(w http.ResponseWriter, r *http.Request) {
	var req ListRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e, err := listEntry(req.Kind, req.Value, req.Rcpt)
	if err == nil {
		err = checkComment(req.Comment)
	}
	if err == nil && req.SkipAttachments && req.Kind != lists.Allow {
		err = badf("skip_attachments: only an allow entry can waive the attachment policy")
	}
	e.SkipAttachments = req.SkipAttachments
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e.Comment = req.Comment
	e.Added = s.now().UTC()
	e.By = s.who(r)
	stored, added, err := s.o.Lists.Add(r.Context(), e)
	if err != nil {
		s.internal(w, r, "add list entry", err)
		return
	}
	if !added {
		// Like postconf -e with the value it already has: not an error,
		// nothing changed, and the answer says so and shows what stays.
		writeJSON(w, http.StatusOK, ListAddResult{Entry: stored, Existing: true})
		return
	}
	s.log.Info("list entry added", "kind", stored.Kind, "value", stored.Value, "rcpt", stored.Rcpt, "skip_attachments", stored.SkipAttachments)
	writeJSON(w, http.StatusCreated, ListAddResult{Entry: stored})
}

func (s *Server) listsRemove(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e, err := listEntry(lists.Kind(q.Get("kind")), q.Get("value"), q.Get("rcpt"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = s.o.Lists.Remove(r.Context(), e.Kind, e.Value, e.Rcpt)
	if errors.Is(err, lists.ErrNotFound) {
		where := "global"
		if e.Rcpt != "" {
			where = "for " + e.Rcpt
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no %s entry %s (%s)", e.Kind, e.Value, where))
		return
	}
	if err != nil {
		s.internal(w, r, "remove list entry", err)
		return
	}
	s.log.Info("list entry removed", "kind", e.Kind, "value", e.Value, "rcpt", e.Rcpt)
	w.WriteHeader(http.StatusNoContent)
}

// listEntry validates and normalises with the lists package's own parsers,
// so the client sees exactly the message the store would give.
func listEntry(kind lists.Kind, value, rcpt string) (lists.Entry, error) {
	if kind != lists.Block && kind != lists.Allow {
		return lists.Entry{}, badf("kind: %q is not block or allow", kind)
	}
	v, err := lists.ParseValue(value)
	if err != nil {
		return lists.Entry{}, badRequest(err.Error())
	}
	rc, err := lists.ParseRcpt(rcpt)
	if err != nil {
		return lists.Entry{}, badRequest(err.Error())
	}
	return lists.Entry{Kind: kind, Value: v, Rcpt: rc}, nil
}

func checkComment(c string) error {
	switch {
	case len(c) > maxComment:
		return badf("comment: longer than %d bytes", maxComment)
	case !utf8.ValidString(c):
		return badf("comment: not valid UTF-8")
	case strings.IndexFunc(c, unicode.IsControl) >= 0:
		return badf("comment: contains control characters")
	}
	return nil
}

func (s *Server) logSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var mq msglog.Query
	err := errors.Join(
		textParam(q, "id", &mq.ID),
		addrParam(q, "sender", &mq.Sender),
		addrParam(q, "rcpt", &mq.Rcpt),
		textParam(q, "action", &mq.Action),
		s.rangeParams(q, &mq.Since, &mq.Until),
		limitParam(q, msglog.MaxLimit, &mq.Limit),
	)
	if err != nil {
		writeError(w, http.StatusBadRequest, oneLine(err))
		return
	}
	recs, err := s.o.Log.Search(r.Context(), mq)
	if err == nil && len(recs) == 0 && mq.ID != strings.ToUpper(mq.ID) {
		// Queue ids are upper-case hex, typed in any case.
		mq.ID = strings.ToUpper(mq.ID)
		recs, err = s.o.Log.Search(r.Context(), mq)
	}
	if err != nil {
		s.internal(w, r, "search message log", err)
		return
	}
	if recs == nil {
		recs = []msglog.Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

// decodeBody reads one bounded JSON object with no unknown fields: a typo
// in a field name must not silently become a global entry.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badf("body: larger than %d bytes", maxBody)
		}
		return badf("body: invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badf("body: more than one JSON value")
	}
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > 255 || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 || !utf8.ValidString(id) {
		return badf("id: %q is not a message id", id)
	}
	return nil
}

func textParam(q url.Values, name string, dst *string) error {
	v := q.Get(name)
	if len(v) > maxFilter || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return badf("%s: not a valid filter value", name)
	}
	*dst = v
	return nil
}

// timeParam reads a time in parseWhen's forms, so that scripts and
// operators can say "the last day" or "since Monday" without computing a
// timestamp.
func (s *Server) timeParam(q url.Values, name string, dst *time.Time) error {
	v := q.Get(name)
	if v == "" {
		return nil
	}
	t, err := parseWhen(v, s.now())
	if err != nil {
		return badf("%s: %v, got %q", name, err, v)
	}
	*dst = t
	return nil
}

// rangeParams reads since and until, or day (a whole UTC day) instead of
// both.
func (s *Server) rangeParams(q url.Values, since, until *time.Time) error {
	v := q.Get("day")
	if v == "" {
		return errors.Join(s.timeParam(q, "since", since), s.timeParam(q, "until", until))
	}
	if q.Get("since") != "" || q.Get("until") != "" {
		return badf("day: a whole day, so neither since nor until with it")
	}
	from, to, err := parseDay(v, s.now())
	if err != nil {
		return badf("day: %v, got %q", err, v)
	}
	*since, *until = from, to
	return nil
}

// addrParam reads an address filter (addrmatch's forms), refusing what
// the stores would.
func addrParam(q url.Values, name string, dst *string) error {
	if err := textParam(q, name, dst); err != nil {
		return err
	}
	if _, err := addrmatch.Parse(*dst); err != nil {
		return badf("%s: %v", name, err)
	}
	return nil
}

// cursorParam reads a page's place: quarantine.Cursor.String of the
// last item of the page before.
func cursorParam(q url.Values, name string, dst *quarantine.Cursor) error {
	c, err := quarantine.ParseCursor(q.Get(name))
	if err != nil {
		return badf("%s: %v", name, err)
	}
	*dst = c
	return nil
}

func limitParam(q url.Values, max int, dst *int) error {
	v := q.Get("limit")
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return badf("limit: want a whole number from 0 (the default) to %d, got %q", max, v)
	}
	*dst = n
	return nil
}

// oneLine joins a multi-line error (errors.Join) into one line.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	if s.o.Cluster == nil {
		writeError(w, http.StatusNotFound, "clustering is not enabled on this node (cluster.enabled: false)")
		return
	}
	writeJSON(w, http.StatusOK, s.o.Cluster())
}
