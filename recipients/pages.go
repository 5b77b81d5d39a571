// Package recipients serves /my/ on the admin listener: a recipient's own
// quarantine, reached from their digest's signed links (package digest).
// The link is the only authority: no token, no session; every action goes
// through the admin API in process, so it has the same claims, message
// log record and audit name as the CLI's.
package recipients

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/quarantine"
)

// Pages serves /my/, the recipients' own quarantine: the signed link is
// the only authority, and every action goes through the admin API in
// process (the same claims, message log and audit as the CLI).
type Pages struct {
	Store    digest.Store
	Settings func() digest.Settings
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: discard
}

// Handler is what admin.Options.Recipients wants.
func (p *Pages) Handler(api admin.LocalAPI) http.Handler {
	mux := http.NewServeMux()
	h := &pages{p: p, api: api}
	mux.HandleFunc("GET /my/{$}", h.list)
	mux.HandleFunc("GET /my/style.css", style)
	for _, a := range []digest.Action{digest.ActRelease, digest.ActDelete, digest.ActOptOut} {
		mux.HandleFunc("GET "+digest.Path(a), h.confirm(a))
		mux.HandleFunc("POST "+digest.Path(a), h.act(a))
	}
	mux.HandleFunc("/my/", func(w http.ResponseWriter, r *http.Request) {
		h.refuse(w, http.StatusNotFound, "There is no such page.")
	})
	mux.Handle("/my", http.RedirectHandler("/my/", http.StatusMovedPermanently))
	return securityHeaders(mux)
}

// securityHeaders: no script at all, no framing, no token leaking in a
// Referer, nothing cached (the guard sets no-store and nosniff too).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

const css = `body{font-family:sans-serif;margin:1em;max-width:60em;line-height:1.4}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top}
form{display:inline}button{padding:.4em 1em;margin:.1em}.err{color:#a00}.subj{word-break:break-word}
`

func style(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	fmt.Fprint(w, css)
}

type pages struct {
	p   *Pages
	api admin.LocalAPI
}

func (h *pages) now() time.Time {
	if h.p.Now == nil {
		return time.Now().UTC()
	}
	return h.p.Now().UTC()
}

func (h *pages) log() *slog.Logger {
	if h.p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.p.Logger
}

var tmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title><link rel="stylesheet" href="/my/style.css"></head>
<body><h1>{{.Title}}</h1>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Item}}<table><tr><th>Date</th><td>{{.Date}}</td></tr><tr><th>From</th><td>{{.Sender}}</td></tr>
<tr><th>Subject</th><td class="subj">{{.Subject}}</td></tr><tr><th>Score</th><td>{{.Score}} ({{.Verdict}})</td></tr></table>{{end}}
{{range .Forms}}<form method="post" action="{{.Action}}"><input type="hidden" name="t" value="{{.Token}}">{{with .Out}}<input type="hidden" name="out" value="{{.}}">{{end}}<button type="submit">{{.Label}}</button></form>
{{end}}
{{if .List}}<p>{{len .Rows}} message(s) held for {{.Rcpt}}, newest first.</p>
<table><tr><th>Date</th><th>From</th><th>Subject</th><th>Score</th><th></th></tr>
{{range .Rows}}<tr><td>{{.Date}}</td><td>{{.Sender}}</td><td class="subj">{{.Subject}}</td><td>{{.Score}}</td><td>{{if .State}}{{.State}}{{else}}{{range .Forms}}<form method="post" action="{{.Action}}"><input type="hidden" name="t" value="{{.Token}}"><button type="submit">{{.Label}}</button></form>{{end}}{{end}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

type form struct {
	Action, Token, Label, Out string
}

type pageRow struct {
	Date, Sender, Subject, Score, Verdict, State string
	Forms                                        []form
}

type pageData struct {
	Title, Error, Message, Rcpt string
	Item                        *pageRow
	Forms                       []form
	List                        bool
	Rows                        []pageRow
}

func (h *pages) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := tmpl.Execute(w, d); err != nil {
		h.log().Warn("recipient page not written", "err", err)
	}
}

func (h *pages) refuse(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, pageData{Title: "Quarantine", Error: msg})
}

// verify checks the request's token for a; on a refusal it answers and
// returns false.
func (h *pages) verify(w http.ResponseWriter, r *http.Request, a digest.Action) (digest.Token, []digest.Key, bool) {
	s := r.FormValue("t")
	keys, err := h.p.Store.Keys(r.Context())
	if err != nil {
		h.log().Error("recipient page: digest keys not read", "err", err)
		h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
		return digest.Token{}, nil, false
	}
	t, err := digest.Verify(digest.NewestFirst(keys), s, a, h.now())
	switch {
	case errors.Is(err, digest.ErrExpired):
		h.refuse(w, http.StatusGone, "This link has expired. The next quarantine digest has fresh links.")
		return digest.Token{}, nil, false
	case err != nil:
		h.log().Info("recipient page: link refused", "action", a, "remote", r.RemoteAddr, "err", err)
		h.refuse(w, http.StatusForbidden, "This link is not valid. Use a link from your latest quarantine digest.")
		return digest.Token{}, nil, false
	}
	return t, keys, true
}

// item is the item a verified token names, checked to list its
// recipient; on a refusal it answers and returns false.
func (h *pages) item(w http.ResponseWriter, r *http.Request, t digest.Token) (quarantine.Item, bool) {
	it, err := h.api(r, "").QuarantineGet(r.Context(), t.Item)
	var ae *admin.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		h.refuse(w, http.StatusGone, "This message is no longer in the quarantine.")
		return it, false
	case err != nil:
		h.log().Error("recipient page: item not read", "id", t.Item, "err", err)
		h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
		return it, false
	case !slices.ContainsFunc(it.Recipients, func(rc string) bool { return digest.Fold(rc) == t.Rcpt }):
		h.log().Warn("recipient page: a signed link for a message not addressed to its recipient", "id", t.Item, "rcpt", t.Rcpt)
		h.refuse(w, http.StatusForbidden, "This link is not valid. Use a link from your latest quarantine digest.")
		return it, false
	}
	if d, err := h.p.Store.Dismissed(r.Context(), t.Rcpt, h.now()); err == nil && d[it.ID] {
		h.refuse(w, http.StatusGone, "You deleted this message.")
		return it, false
	}
	return it, true
}

func row(it quarantine.Item) *pageRow {
	return &pageRow{
		Date:    it.Time.UTC().Format("2006-01-02 15:04 UTC"),
		Sender:  digest.Clean(it.Sender, digest.MaxSender),
		Subject: digest.Clean(it.Subject, digest.MaxSubject),
		Score:   fmt.Sprintf("%.1f", it.Score),
		Verdict: digest.Clean(it.Verdict, 20),
	}
}

// operator names the recipient in the audit trail.
func operator(rcpt string) string { return admin.OperatorName("digest_"+rcpt, "") }

var titles = map[digest.Action]string{digest.ActRelease: "Release this message?", digest.ActDelete: "Delete this message?", digest.ActOptOut: "Quarantine digest"}

// confirm is a GET: it shows what the link would do, with the button
// that does it. A GET never acts, so link scanners release nothing.
func (h *pages) confirm(a digest.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _, ok := h.verify(w, r, a)
		if !ok {
			return
		}
		d := pageData{Title: titles[a], Rcpt: t.Rcpt}
		tok := r.FormValue("t")
		switch a {
		case digest.ActOptOut:
			out, err := h.p.Store.OptedOut(r.Context(), t.Rcpt)
			if err != nil {
				h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
				return
			}
			if out {
				d.Message = t.Rcpt + " gets no quarantine digest."
				d.Forms = []form{{Action: digest.Path(a), Token: tok, Label: "Send me the digest again", Out: "false"}}
			} else {
				d.Message = t.Rcpt + " gets a daily quarantine digest."
				d.Forms = []form{{Action: digest.Path(a), Token: tok, Label: "Stop the digest", Out: "true"}}
			}
		default:
			it, ok := h.item(w, r, t)
			if !ok {
				return
			}
			d.Item = row(it)
			label := "Release"
			if a == digest.ActDelete {
				label = "Delete"
			}
			d.Message = "For " + t.Rcpt + ":"
			if a == digest.ActRelease && it.IsReleasedTo(t.Rcpt) {
				d.Message = "This message was released to " + t.Rcpt + " already."
				break
			}
			d.Forms = []form{{Action: digest.Path(a), Token: tok, Label: label}}
		}
		h.render(w, http.StatusOK, d)
	}
}

// act is the POST the confirmation's button sends.
func (h *pages) act(a digest.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		t, _, ok := h.verify(w, r, a)
		if !ok {
			return
		}
		ctx := r.Context()
		switch a {
		case digest.ActOptOut:
			out := r.PostFormValue("out") != "false"
			if err := h.p.Store.SetOptOut(ctx, t.Rcpt, out); err != nil {
				h.log().Error("recipient opt-out not stored", "rcpt", t.Rcpt, "err", err)
				h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
				return
			}
			h.log().Info("digest opt-out changed by its recipient", "rcpt", t.Rcpt, "opted_out", out, "remote", r.RemoteAddr)
			msg := "You will get the quarantine digest again."
			if out {
				msg = "You will get no more quarantine digests. The link in the last one lets you change your mind."
			}
			h.render(w, http.StatusOK, pageData{Title: "Quarantine digest", Message: msg})
			return
		}
		it, ok := h.item(w, r, t)
		if !ok {
			return
		}
		api := h.api(r, operator(t.Rcpt))
		if a == digest.ActRelease {
			h.release(w, ctx, api, t, it)
			return
		}
		h.delete(w, ctx, api, t, it)
	}
}

func (h *pages) release(w http.ResponseWriter, ctx context.Context, api *admin.Client, t digest.Token, it quarantine.Item) {
	_, err := api.QuarantineRelease(ctx, it.ID, admin.ReleaseOptions{Rcpts: []string{t.Rcpt}})
	var ae *admin.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		h.render(w, http.StatusConflict, pageData{Title: "Release", Item: row(it), Message: "This message was released to you already, or is being released."})
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		h.refuse(w, http.StatusGone, "This message is no longer in the quarantine.")
	case err != nil:
		h.log().Warn("release by its recipient failed", "id", it.ID, "rcpt", t.Rcpt, "err", err)
		h.render(w, http.StatusBadGateway, pageData{Title: "Release", Item: row(it), Error: "The message could not be delivered now. Please try again later."})
	default:
		h.render(w, http.StatusOK, pageData{Title: "Released", Item: row(it), Message: "The message was delivered to " + t.Rcpt + "."})
	}
}

// delete deletes the item when no other recipient still has it waiting;
// else it is dismissed for this recipient only (hidden from their page
// and digests) and stays for the others.
func (h *pages) delete(w http.ResponseWriter, ctx context.Context, api *admin.Client, t digest.Token, it quarantine.Item) {
	now := h.now()
	others := 0
	for _, rc := range it.Unreleased() {
		rc = digest.Fold(rc)
		if rc == t.Rcpt {
			continue
		}
		d, err := h.p.Store.Dismissed(ctx, rc, now)
		if err != nil {
			h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
			return
		}
		if !d[it.ID] {
			others++
		}
	}
	var err error
	if others == 0 {
		err = api.QuarantineDelete(ctx, it.ID)
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			err = nil
		}
	} else {
		err = h.p.Store.Dismiss(ctx, t.Rcpt, it.ID, digest.ItemExpiry(it, h.p.Settings().Lifetime))
		if err == nil {
			h.log().Info("quarantine item dismissed by one of its recipients", "id", it.ID, "rcpt", t.Rcpt)
		}
	}
	if err != nil {
		h.log().Error("delete by its recipient failed", "id", it.ID, "rcpt", t.Rcpt, "err", err)
		h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
		return
	}
	h.render(w, http.StatusOK, pageData{Title: "Deleted", Item: row(it), Message: "The message was deleted for " + t.Rcpt + "."})
}

// list is the recipient's whole quarantine, newest first, each item with
// buttons whose tokens are signed now.
func (h *pages) list(w http.ResponseWriter, r *http.Request) {
	t, keys, ok := h.verify(w, r, digest.ActList)
	if !ok {
		return
	}
	ctx := r.Context()
	items, err := h.api(r, "").QuarantineList(ctx, admin.QuarantineQuery{Rcpt: t.Rcpt, Limit: quarantine.DefaultLimit})
	if err != nil {
		h.log().Error("recipient page: quarantine not listed", "rcpt", t.Rcpt, "err", err)
		h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
		return
	}
	now := h.now()
	dismissed, err := h.p.Store.Dismissed(ctx, t.Rcpt, now)
	if err != nil {
		h.refuse(w, http.StatusServiceUnavailable, "The quarantine cannot be reached right now. Please try again later.")
		return
	}
	key, lifetime := digest.NewestFirst(keys)[0], h.p.Settings().Lifetime
	d := pageData{Title: "Your quarantine", Rcpt: t.Rcpt, List: true}
	for _, it := range items {
		// The index matched the recipient; check it as the actions do.
		if dismissed[it.ID] || !slices.ContainsFunc(it.Recipients, func(rc string) bool { return digest.Fold(rc) == t.Rcpt }) {
			continue
		}
		pr := row(it)
		if it.IsReleasedTo(t.Rcpt) {
			pr.State = "released"
		} else {
			for _, a := range []digest.Action{digest.ActRelease, digest.ActDelete} {
				tok, err := digest.Sign(key, digest.Token{Action: a, Rcpt: t.Rcpt, Item: it.ID, Expires: digest.ItemExpiry(it, lifetime)})
				if err != nil {
					continue // an id no token holds; the CLI can act on it
				}
				label := map[digest.Action]string{digest.ActRelease: "Release", digest.ActDelete: "Delete"}[a]
				pr.Forms = append(pr.Forms, form{Action: digest.Path(a), Token: tok, Label: label})
			}
		}
		d.Rows = append(d.Rows, *pr)
	}
	h.render(w, http.StatusOK, d)
}
