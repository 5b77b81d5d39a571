package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

// sendTo runs one transaction from a@sender.test to rcpts and returns the
// quarantine id of a quarantined message ("" when it was not).
func sendTo(t *testing.T, addr string, rcpts []string, subject, body string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: a@sender.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n", strings.Join(rcpts, ", "), subject, body)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatalf("end of data (%s): %v", subject, err)
	}
	c.Quit()
	_, qid, _ := strings.Cut(resp.StatusText, "queued as ")
	return qid
}

// digestText is the text part of a digest as smtp-sink dumped it.
func digestText(t *testing.T, dump string) string {
	t.Helper()
	r, err := mail.CreateReader(strings.NewReader(dump))
	if err != nil {
		t.Fatalf("digest does not parse: %v\n%s", err, dump)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("digest without a text part: %v\n%s", err, dump)
		}
		if ct, _, _ := p.Header.(*mail.InlineHeader).ContentType(); ct == "text/plain" {
			b, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// linkAfter is the URL that follows label on a line of the digest's text
// for the entry whose Subject line is subject ("" = the first).
func linkAfter(t *testing.T, text, subject, label string) string {
	t.Helper()
	seen := subject == ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Subject: ") && strings.TrimPrefix(line, "Subject: ") == subject {
			seen = true
		}
		if seen && strings.HasPrefix(line, label) {
			return strings.TrimSpace(strings.TrimPrefix(line, label))
		}
	}
	t.Fatalf("no %q link for %q in the digest:\n%s", label, subject, text)
	return ""
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("t")
}

// The recipients' digest on a real node and a real smtp-sink downstream:
// each recipient gets one digest; a release link's GET releases nothing,
// its POST releases to that recipient only; tampered, expired, wrong and
// other recipients' links are refused; a second send the same day sends
// nothing; an opt-out holds; a delete by one of two recipients leaves
// the message to the other.
func TestDigestOnARealNode(t *testing.T) {
	ctx := context.Background()
	n, sink, ac, base := startDigestNode(t)
	smtpAddr := n.SMTPAddrs()[0].String()
	const alice, bob, carol = "alice@example.org", "bob@example.org", "carol@example.org"
	both := sendTo(t, smtpAddr, []string{alice, bob}, "spam for alice and bob", gtube)
	forCarol := sendTo(t, smtpAddr, []string{carol}, "spam for carol", gtube)
	if both == "" || forCarol == "" {
		t.Fatalf("GTUBE not quarantined: %q %q", both, forCarol)
	}

	out, err := ac.DigestSend(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []admin.DigestOutcome{{Rcpt: alice, Result: digest.Sent, Items: 1}, {Rcpt: bob, Result: digest.Sent, Items: 1}, {Rcpt: carol, Result: digest.Sent, Items: 1}}
	if !slices.Equal(out, want) {
		t.Fatalf("digest send = %+v, want %+v", out, want)
	}
	msgs := sink.WaitMessages(t, 3, 30*time.Second)
	aliceDigests := testenv.MessagesTo(msgs, alice)
	if len(msgs) != 3 || len(aliceDigests) != 1 || len(testenv.MessagesTo(msgs, carol)) != 1 {
		t.Fatalf("sink has %d messages, %d for alice; want 3, one each", len(msgs), len(aliceDigests))
	}
	ad := aliceDigests[0]
	if s := testenv.Header(ad, "Subject"); s != "Quarantine: 1 new message for alice@example.org" {
		t.Errorf("alice's digest subject %q", s)
	}
	if testenv.Header(ad, "Auto-Submitted") != "auto-generated" || testenv.Header(ad, "X-Mail-Args") == "" {
		t.Errorf("alice's digest headers:\n%s", ad)
	}
	text := digestText(t, ad)
	if !strings.Contains(text, "From:    a@sender.test") || strings.Contains(text, "spam for carol") || strings.Contains(ad, gtube) {
		t.Errorf("alice's digest lists the wrong things:\n%s", text)
	}
	release := linkAfter(t, text, "spam for alice and bob", "Release:")
	del := linkAfter(t, text, "spam for alice and bob", "Delete:")
	list := linkAfter(t, text, "", "Your whole quarantine:")
	optout := linkAfter(t, text, "", "No more digests:")
	if !strings.HasPrefix(release, base+"/my/release?t=") {
		t.Fatalf("release link %q", release)
	}

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (int, string, http.Header) {
		t.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	post := func(path, token string, extra ...string) (int, string) {
		t.Helper()
		form := url.Values{"t": {token}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		resp, err := hc.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A GET (a link scanner, a preview) shows the button and acts not.
	code, body, hdr := get(release)
	if code != http.StatusOK || !strings.Contains(body, `<form method="post" action="/my/release">`) || !strings.Contains(body, "spam for alice and bob") {
		t.Fatalf("GET release link: %d\n%s", code, body)
	}
	for k, v := range map[string]string{"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if hdr.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, hdr.Get(k), v)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("a recipient page has a script")
	}
	time.Sleep(500 * time.Millisecond)
	if got := len(sink.Messages(t)); got != 3 {
		t.Fatalf("after the GET the sink has %d messages, want still 3", got)
	}
	if it, err := ac.QuarantineGet(ctx, both); err != nil || it.WasReleased() || it.Claim != nil {
		t.Fatalf("after the GET: %+v, %v; want unreleased", it, err)
	}

	tok := tokenOf(t, release)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[20] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	keys, err := n.store.Digest.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	sign := func(tk digest.Token) string {
		s, err := digest.Sign(keys[0], tk)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := sign(digest.Token{Action: digest.ActRelease, Rcpt: alice, Item: both, Expires: time.Now().Add(-time.Minute)})
	aliceOnCarols := sign(digest.Token{Action: digest.ActRelease, Rcpt: alice, Item: forCarol, Expires: time.Now().Add(time.Hour)})
	for _, tt := range []struct {
		name, path, token string
		want              int
	}{
		{"tampered", "/my/release", tampered, http.StatusForbidden},
		{"expired", "/my/release", expired, http.StatusGone},
		{"alice's link on carol's message", "/my/release", aliceOnCarols, http.StatusForbidden},
		{"delete link on the release route", "/my/release", tokenOf(t, del), http.StatusForbidden},
		{"list link on the release route", "/my/release", tokenOf(t, list), http.StatusForbidden},
		{"no token", "/my/release", "", http.StatusForbidden},
	} {
		if code, body := post(tt.path, tt.token); code != tt.want {
			t.Errorf("%s: POST %s = %d, want %d\n%s", tt.name, tt.path, code, tt.want, body)
		}
		if code, _, _ := get(base + tt.path + "?t=" + url.QueryEscape(tt.token)); code != tt.want {
			t.Errorf("%s: GET %s = %d, want %d", tt.name, tt.path, code, tt.want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if got := len(sink.Messages(t)); got != 3 {
		t.Fatalf("after the refused links the sink has %d messages, want still 3", got)
	}

	// The click: released to alice, and to alice only.
	if code, body := post("/my/release", tok); code != http.StatusOK || !strings.Contains(body, "delivered to alice@example.org") {
		t.Fatalf("POST release: %d\n%s", code, body)
	}
	msgs = sink.WaitMessages(t, 4, 30*time.Second)
	releasedOnlyTo(t, msgs, alice)
	it, err := ac.QuarantineGet(ctx, both)
	if err != nil || !it.IsReleasedTo(alice) || it.IsReleasedTo(bob) {
		t.Fatalf("after alice's release: %+v, %v; want released to alice only", it, err)
	}
	if code, _ := post("/my/release", tok); code != http.StatusConflict {
		t.Errorf("a second click = %d, want 409 (released already)", code)
	}
	recs, err := ac.Log(ctx, admin.LogQuery{ID: both})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(recs, func(r msglog.Record) bool {
		return r.Action == msglog.ActionRelease && strings.HasPrefix(r.By, "digest_alice@example.org, ") && slices.Equal(r.Recipients, []string{alice})
	}) {
		t.Errorf("message log of %s has no release by digest_alice@example.org to alice: %+v", both, recs)
	}

	// alice's page: her message only, released, and no one else's.
	code, body, _ = get(list)
	if code != http.StatusOK || !strings.Contains(body, "spam for alice and bob") || !strings.Contains(body, "released") || strings.Contains(body, "spam for carol") {
		t.Errorf("alice's page: %d\n%s", code, body)
	}

	// Twice on one day: once. A new message to alice changes nothing today.
	again := sendTo(t, smtpAddr, []string{alice, bob}, "more spam for alice and bob", gtube)
	out, err = ac.DigestSend(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want = []admin.DigestOutcome{{Rcpt: alice, Result: digest.AlreadySent, Items: 1}, {Rcpt: bob, Result: digest.AlreadySent, Items: 1}, {Rcpt: carol, Result: digest.NothingNew}}
	if !slices.Equal(out, want) {
		t.Errorf("second send the same day = %+v, want %+v", out, want)
	}
	time.Sleep(300 * time.Millisecond)
	if got := len(sink.Messages(t)); got != 4 {
		t.Fatalf("after the second send the sink has %d messages, want still 4", got)
	}

	// alice deletes the new one: bob still has it waiting, so it stays
	// for him and goes from her page.
	aliceList := tokenOf(t, list)
	code, body, _ = get(list)
	if !strings.Contains(body, "more spam for alice and bob") {
		t.Fatalf("alice's page lacks the new message: %d\n%s", code, body)
	}
	delTok := sign(digest.Token{Action: digest.ActDelete, Rcpt: alice, Item: again, Expires: time.Now().Add(time.Hour)})
	if code, body := post("/my/delete", delTok); code != http.StatusOK {
		t.Fatalf("alice's delete: %d\n%s", code, body)
	}
	if _, err := ac.QuarantineGet(ctx, again); err != nil {
		t.Errorf("alice's delete removed bob's message: %v", err)
	}
	if _, body, _ := get(base + "/my/?t=" + url.QueryEscape(aliceList)); strings.Contains(body, "more spam for alice and bob") {
		t.Errorf("alice's page still shows what she deleted:\n%s", body)
	}
	// bob deletes it as well: now it is gone.
	bobDel := sign(digest.Token{Action: digest.ActDelete, Rcpt: bob, Item: again, Expires: time.Now().Add(time.Hour)})
	if code, body := post("/my/delete", bobDel); code != http.StatusOK {
		t.Fatalf("bob's delete: %d\n%s", code, body)
	}
	if _, err := ac.QuarantineGet(ctx, again); err == nil {
		t.Error("deleted by both its recipients, the message is still held")
	}

	// carol opts out with her link; a new message gets her no digest.
	if code, body, _ := get(linkAfter(t, digestText(t, testenv.MessagesTo(msgs, carol)[0]), "", "No more digests:")); code != http.StatusOK || !strings.Contains(body, "Stop the digest") {
		t.Fatalf("GET opt-out: %d\n%s", code, body)
	}
	carolOut := tokenOf(t, linkAfter(t, digestText(t, testenv.MessagesTo(msgs, carol)[0]), "", "No more digests:"))
	if code, _ := post("/my/optout", carolOut, "out", "true"); code != http.StatusOK {
		t.Fatalf("POST opt-out: %d", code)
	}
	if o, err := ac.DigestOptOuts(ctx); err != nil || !slices.Equal(o, []string{carol}) {
		t.Errorf("opt-outs = %v, %v; want carol", o, err)
	}
	if code, _ := post("/my/optout", tokenOf(t, optout), "out", "true"); code != http.StatusOK {
		t.Errorf("alice's opt-out: %d", code)
	}
	if err := ac.DigestOptOut(ctx, alice, false); err != nil {
		t.Fatal(err)
	}
	if o, err := ac.DigestOptOuts(ctx); err != nil || !slices.Equal(o, []string{carol}) {
		t.Errorf("opt-outs after alice opted in again = %v, %v; want carol", o, err)
	}
	sendTo(t, smtpAddr, []string{carol}, "more spam for carol", gtube)
	if out, err := ac.DigestSend(ctx, carol); err != nil || len(out) != 1 || out[0].Result != digest.OptedOut {
		t.Errorf("send to carol after her opt-out = %+v, %v", out, err)
	}

	// Rotation: a new key signs, the old one still verifies.
	if res, err := ac.DigestRotateKey(ctx); err != nil || res.ID == keys[0].ID || len(res.Dropped) != 0 {
		t.Fatalf("rotate = %+v, %v", res, err)
	}
	if code, _, _ := get(list); code != http.StatusOK {
		t.Errorf("alice's list link after a rotation: %d, want 200", code)
	}
}

// startDigestNode starts a node with digests on (links to its admin
// listener) in front of a new smtp-sink, stopped when the test ends.
func startDigestNode(t *testing.T) (*Node, *testenv.Sink, *admin.Client, string) {
	t.Helper()
	ctx := context.Background()
	sink := testenv.StartSink(t)
	cfg := nodeConfig(t, sink.Addr, "")
	cfg.Admin.Listen = testenv.FreeAddr(t)
	base := "http://" + cfg.Admin.Listen
	cfg.Digest.Enabled, cfg.Digest.URL = true, base
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Build(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := n.Start(ctx); err != nil {
		n.Stop(ctx)
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Stop(ctx) })
	ac, err := admin.NewClient(base, "")
	if err != nil {
		t.Fatal(err)
	}
	return n, sink, ac, base
}

// releasedOnlyTo checks that of msgs exactly one is the GTUBE message,
// released to rcpt alone.
func releasedOnlyTo(t *testing.T, msgs []string, rcpt string) {
	t.Helper()
	var released []string
	for _, m := range msgs {
		if strings.Contains(m, gtube) {
			released = append(released, m)
		}
	}
	if len(released) != 1 || strings.Count(released[0], "X-Rcpt-Args:") != 1 || testenv.Header(released[0], "X-Rcpt-Args") != "<"+rcpt+">" {
		t.Fatalf("released messages %d, want one to %s only:\n%s", len(released), rcpt, strings.Join(released, "\n----\n"))
	}
}
