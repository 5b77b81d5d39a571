package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/quarantine"
)

const (
	// quarantinePage is how many items one page of the list shows.
	quarantinePage = 50
	// maxBulk bounds the ids one form may act on: each is one API call,
	// a release one delivery.
	maxBulk = 500
	// maxFlashFailures is how many failed ids the outcome names.
	maxFlashFailures = 5
)

// quarantineVerdicts are the verdicts the filter offers (the API's).
var quarantineVerdicts = []string{"spam", "virus", "banned", "unscannable", "engine_failed", "policy"}

func (c *Console) quarantineRoutes() {
	c.mux.HandleFunc("GET /quarantine", c.authed(c.quarantinePage))
	c.mux.HandleFunc("GET /quarantine/{id}", c.authed(c.quarantineItem))
	c.mux.HandleFunc("GET /quarantine/{id}/raw", c.authed(c.quarantineRaw))
	c.mux.HandleFunc("POST /quarantine/release", c.authed(c.quarantineRelease))
	c.mux.HandleFunc("POST /quarantine/delete", c.authed(c.quarantineDelete))
	c.mux.HandleFunc("POST /quarantine/learn", c.authed(c.quarantineLearn))
}

// quarantineList is the list page's data.
type quarantineList struct {
	Q        admin.QuarantineQuery // the filter as the form shows it
	Verdicts []string
	Items    []quarantine.Item
	Error    string // the API's refusal of the filter
	Older    string // the next page's URL; "" = this is the last
	Newest   string // the first page's URL when this is a later one
	Back     string // this page, for the actions to come back to
	Learning bool
	MaxBulk  int
}

func (c *Console) quarantinePage(w http.ResponseWriter, r *http.Request, s *session) {
	v := r.URL.Query()
	q := admin.QuarantineQuery{
		Rcpt: strings.TrimSpace(v.Get("rcpt")), Sender: strings.TrimSpace(v.Get("sender")),
		Subject: v.Get("subject"), Verdict: v.Get("verdict"),
		Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until")), Day: strings.TrimSpace(v.Get("day")),
		Before: v.Get("before"),
	}
	d := quarantineList{Q: q, Verdicts: quarantineVerdicts, Back: r.URL.RequestURI(), MaxBulk: maxBulk}
	api := c.client(r, s)
	// One more than a page tells whether there is an older page.
	q.Limit = quarantinePage + 1
	items, err := api.QuarantineList(r.Context(), q)
	if err != nil {
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			c.log.Warn("console: list quarantine", "err", err)
		}
		d.Error = apiMessage(err)
	}
	if len(items) > quarantinePage {
		items = items[:quarantinePage]
		next := filterValues(q)
		next.Set("before", quarantine.CursorOf(items[len(items)-1]).String())
		d.Older = "/quarantine?" + next.Encode()
	}
	if q.Before != "" {
		d.Newest = "/quarantine?" + filterValues(admin.QuarantineQuery{
			Rcpt: q.Rcpt, Sender: q.Sender, Subject: q.Subject, Verdict: q.Verdict, Since: q.Since, Until: q.Until, Day: q.Day,
		}).Encode()
	}
	d.Items = items
	d.Learning = c.learning(r.Context(), api)
	c.render(w, r, s, http.StatusOK, "quarantine", "Quarantine", d)
}

// filterValues is q as the list page's query string.
func filterValues(q admin.QuarantineQuery) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"rcpt": q.Rcpt, "sender": q.Sender, "subject": q.Subject, "verdict": q.Verdict,
		"since": q.Since, "until": q.Until, "day": q.Day, "before": q.Before} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// learning reports whether this node's spam engine learns (the node's
// status says); if the status cannot be had, the buttons stay away and
// the API would refuse anyway.
func (c *Console) learning(ctx context.Context, api *admin.Client) bool {
	var st struct {
		Learning bool `json:"learning"`
	}
	if err := api.Status(ctx, &st); err != nil {
		return false
	}
	return st.Learning
}

// quarantineView is the message page's data.
type quarantineView struct {
	Item     quarantine.Item
	Rcpts    []rcptState
	Msg      msgText
	Learning bool
	Back     string
}

type rcptState struct {
	Addr     string
	Released bool
}

func (c *Console) quarantineItem(w http.ResponseWriter, r *http.Request, s *session) {
	api := c.client(r, s)
	id := r.PathValue("id")
	it, err := api.QuarantineGet(r.Context(), id)
	if err != nil {
		c.fail(w, r, s, apiStatus(err), apiMessage(err))
		return
	}
	d := quarantineView{Item: it, Back: "/quarantine/" + url.PathEscape(it.ID)}
	for _, rc := range it.Recipients {
		d.Rcpts = append(d.Rcpts, rcptState{Addr: rc, Released: it.IsReleasedTo(rc)})
	}
	raw, err := api.QuarantineRaw(r.Context(), it.ID)
	if err != nil {
		d.Msg.Problem = "the message could not be read: " + apiMessage(err)
	} else {
		d.Msg = readMessage(raw)
	}
	d.Learning = c.learning(r.Context(), api)
	c.render(w, r, s, http.StatusOK, "quarantine-item", "Message "+it.ID, d)
}

// safeName is what may stand in a download's file name.
var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// quarantineRaw hands the message over as a file to save, never as a
// page: the browser must not render what a sender wrote.
func (c *Console) quarantineRaw(w http.ResponseWriter, r *http.Request, s *session) {
	api := c.client(r, s)
	id := r.PathValue("id")
	raw, err := api.QuarantineRaw(r.Context(), id)
	if err != nil {
		c.fail(w, r, s, apiStatus(err), apiMessage(err))
		return
	}
	name := "message.eml"
	if safeName.MatchString(id) {
		name = id + ".eml"
	}
	c.audit(r, s, "download quarantined message", id, nil)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

// apiStatus is the status to show an API error with: the API's for a
// refusal (404 for an unknown id), else 502.
func apiStatus(err error) int {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return ae.Status
	}
	return http.StatusBadGateway
}

// formIDs reads the ids a form acts on: at least one, at most maxBulk,
// each once.
func formIDs(r *http.Request) ([]string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, errors.New("the form could not be read")
	}
	var ids []string
	for _, id := range r.PostForm["id"] {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) == 0:
		return nil, errors.New("no message selected: tick at least one")
	case len(ids) > maxBulk:
		return nil, fmt.Errorf("%d messages selected: at most %d at once", len(ids), maxBulk)
	}
	return ids, nil
}

// bulk does act for each id of the form and ends the action: one audit
// line per id, the outcome counted ("released 2, failed 1: Q…: reason")
// on the page back.
func (c *Console) bulk(w http.ResponseWriter, r *http.Request, s *session, action, verb string, act func(ctx context.Context, api *admin.Client, id string) (note string, err error)) {
	back := r.PostFormValue("back")
	if back == "" {
		back = "/quarantine"
	}
	ids, err := formIDs(r)
	if err != nil {
		c.done(w, r, s, action, "", err, "", back)
		return
	}
	api := c.client(r, s)
	var ok int
	var failed, notes []string
	for _, id := range ids {
		note, err := act(r.Context(), api, id)
		c.audit(r, s, action, id, err)
		if err != nil {
			failed = append(failed, id+": "+apiMessage(err))
			continue
		}
		ok++
		if note != "" {
			notes = append(notes, id+": "+note)
		}
	}
	msg := fmt.Sprintf("%s %d", verb, ok)
	if len(failed) > 0 {
		msg += fmt.Sprintf(", failed %d: %s", len(failed), strings.Join(failed[:min(len(failed), maxFlashFailures)], "; "))
		if len(failed) > maxFlashFailures {
			msg += fmt.Sprintf("; and %d more (see the node's log)", len(failed)-maxFlashFailures)
		}
	}
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes[:min(len(notes), maxFlashFailures)], "; ") + ")"
	}
	if len(failed) > 0 {
		c.setFlash(w, "", msg)
	} else {
		c.setFlash(w, msg, "")
	}
	http.Redirect(w, r, localPath(back), http.StatusSeeOther)
}

func (c *Console) quarantineRelease(w http.ResponseWriter, r *http.Request, s *session) {
	o := admin.ReleaseOptions{Force: r.PostFormValue("force") == "1", LearnHam: r.PostFormValue("learn") == "ham"}
	if rc := strings.TrimSpace(r.PostFormValue("rcpt")); rc != "" {
		o.Rcpts = []string{rc}
	}
	c.bulk(w, r, s, "quarantine release", "released", func(ctx context.Context, api *admin.Client, id string) (string, error) {
		res, err := api.QuarantineRelease(ctx, id, o)
		if err != nil {
			return "", err
		}
		return res.Warning, nil
	})
}

func (c *Console) quarantineDelete(w http.ResponseWriter, r *http.Request, s *session) {
	c.bulk(w, r, s, "quarantine delete", "deleted", func(ctx context.Context, api *admin.Client, id string) (string, error) {
		return "", api.QuarantineDelete(ctx, id)
	})
}

func (c *Console) quarantineLearn(w http.ResponseWriter, r *http.Request, s *session) {
	as := r.PostFormValue("as")
	if as != "spam" && as != "ham" {
		c.done(w, r, s, "quarantine learn", "", errors.New("learn as what? spam or ham"), "", r.PostFormValue("back"))
		return
	}
	c.bulk(w, r, s, "quarantine learn "+as, "learned as "+as, func(ctx context.Context, api *admin.Client, id string) (string, error) {
		_, err := api.QuarantineLearn(ctx, id, as == "spam")
		return "", err
	})
}

// released says how far an item was released, for the list.
func released(it quarantine.Item) string {
	switch {
	case !it.WasReleased():
		return ""
	case len(it.Unreleased()) == 0:
		return "released " + it.Released.UTC().Format(time.DateTime)
	}
	return fmt.Sprintf("released to %d of %d", len(it.Recipients)-len(it.Unreleased()), len(it.Recipients))
}

// size is a byte count as people read it.
func size(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
