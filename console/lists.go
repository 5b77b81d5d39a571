package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/lists"
)

func (c *Console) listsRoutes() {
	c.mux.HandleFunc("GET /lists", c.authed(c.listsPage))
	c.mux.HandleFunc("POST /lists/add", c.authed(c.listsAdd))
	c.mux.HandleFunc("POST /lists/remove", c.authed(c.listsRemove))
}

// listsData is the lists page: the filter, the entries it keeps and the
// add form (filled again with what was refused, so nothing is typed twice).
type listsData struct {
	Kind, Scope, Q string // filters: block|allow, global|rcpt, a text in value, recipient or comment
	Entries        []lists.Entry
	Total          int
	Add            admin.ListRequest
	Failed         string // the API's answer when the lists could not be read
}

func (c *Console) listsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := listsData{
		Kind: q.Get("kind"), Scope: q.Get("scope"), Q: strings.TrimSpace(q.Get("q")),
		Add: admin.ListRequest{Kind: lists.Kind(cmp.Or(q.Get("add_kind"), "block")), Value: q.Get("add_value"),
			Rcpt: q.Get("add_rcpt"), Comment: q.Get("add_comment"), SkipAttachments: q.Get("add_skip") != ""},
	}
	all, err := c.client(r, s).Lists(r.Context())
	if err != nil {
		d.Failed = apiMessage(err)
		c.render(w, r, s, http.StatusBadGateway, "lists", "Lists", d)
		return
	}
	d.Total = len(all)
	d.Entries = filterEntries(all, d.Kind, d.Scope, d.Q)
	c.render(w, r, s, http.StatusOK, "lists", "Lists", d)
}

// filterEntries keeps the entries the filters match, grouped: block before
// allow, global before per recipient, then by recipient and value.
func filterEntries(all []lists.Entry, kind, scope, text string) []lists.Entry {
	text = strings.ToLower(text)
	var out []lists.Entry
	for _, e := range all {
		switch {
		case kind != "" && string(e.Kind) != kind,
			scope == "global" && e.Rcpt != "",
			scope == "rcpt" && e.Rcpt == "",
			text != "" && !strings.Contains(strings.ToLower(e.Value+"\x00"+e.Rcpt+"\x00"+e.Comment), text):
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b lists.Entry) int {
		return cmp.Or(
			-strings.Compare(string(a.Kind), string(b.Kind)), // block, then allow
			strings.Compare(a.Rcpt, b.Rcpt),                  // "" (global) first
			strings.Compare(a.Value, b.Value))
	})
	return out
}

func (c *Console) listsAdd(w http.ResponseWriter, r *http.Request, s *session) {
	req := admin.ListRequest{
		Kind: lists.Kind(r.PostFormValue("kind")), Value: strings.TrimSpace(r.PostFormValue("value")),
		Rcpt: strings.TrimSpace(r.PostFormValue("rcpt")), Comment: r.PostFormValue("comment"),
		SkipAttachments: r.PostFormValue("skip_attachments") != "",
	}
	res, err := c.client(r, s).ListAdd(r.Context(), req)
	target := describeEntry(lists.Entry{Kind: req.Kind, Value: req.Value, Rcpt: req.Rcpt})
	back := "/lists"
	if err != nil {
		// Back to the form as it was, with the API's reason above it.
		v := url.Values{"add_kind": {string(req.Kind)}, "add_value": {req.Value}, "add_rcpt": {req.Rcpt}, "add_comment": {req.Comment}}
		if req.SkipAttachments {
			v.Set("add_skip", "1")
		}
		back += "?" + v.Encode()
	}
	ok := "added " + describeEntry(res.Entry)
	if res.Existing {
		ok = "already listed: " + describeEntry(res.Entry) + "; nothing changed"
	}
	c.done(w, r, s, "list add", target, err, ok, back)
}

func (c *Console) listsRemove(w http.ResponseWriter, r *http.Request, s *session) {
	e := lists.Entry{Kind: lists.Kind(r.PostFormValue("kind")), Value: r.PostFormValue("value"), Rcpt: r.PostFormValue("rcpt")}
	err := c.client(r, s).ListRemove(r.Context(), e.Kind, e.Value, e.Rcpt)
	c.done(w, r, s, "list remove", describeEntry(e), err, "removed "+describeEntry(e), localPath(cmp.Or(r.PostFormValue("back"), "/lists")))
}

// describeEntry names an entry as the flash and the audit line show it.
func describeEntry(e lists.Entry) string {
	where := "global"
	if e.Rcpt != "" {
		where = "for " + e.Rcpt
	}
	return fmt.Sprintf("%s %s (%s)", e.Kind, e.Value, where)
}
