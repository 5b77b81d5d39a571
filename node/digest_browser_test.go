package node

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/testenv"
)

// open navigates to u and returns the HTTP status and the text of sel.
func open(t *testing.T, ctx context.Context, u, sel string) (int64, string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.Run(c, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	text, err := chromedp.Run(c, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s on %s: %v", sel, u, err)
	}
	return resp.Status, text
}

// The digest's release link in headless Chromium: opening it shows the
// message and a button and releases nothing; the click releases it to
// that recipient only; a tampered link shows a refusal. Screenshots of
// each page are kept with the test's artifacts.
func TestDigestLinkInABrowser(t *testing.T) {
	ctx := testenv.Browser(t)
	n, sink, ac, _ := startDigestNode(t)
	smtpAddr := n.SMTPAddrs()[0].String()
	const alice, bob = "alice@example.org", "bob@example.org"
	id := sendTo(t, smtpAddr, []string{alice, bob}, `<script>alert("x")</script> spam for alice and bob`, gtube)
	if id == "" {
		t.Fatal("GTUBE not quarantined")
	}
	if _, err := ac.DigestSend(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	msgs := sink.WaitMessages(t, 2, 30*time.Second)
	text := digestText(t, testenv.MessagesTo(msgs, alice)[0])
	release := linkAfter(t, text, "", "Release:")
	list := linkAfter(t, text, "", "Your whole quarantine:")

	status, title := open(t, ctx, release, "h1")
	if status != 200 || title != "Release this message?" {
		t.Fatalf("release link: %d %q", status, title)
	}
	if subj, _ := chromedp.Run(ctx, chromedp.Text(".subj")); !strings.Contains(subj, `<script>alert("x")</script>`) {
		t.Errorf("subject not shown as text: %q", subj)
	}
	testenv.Screenshot(t, ctx, "digest-release-confirm")
	time.Sleep(500 * time.Millisecond)
	if got := len(sink.Messages(t)); got != 2 {
		t.Fatalf("opening the link: the sink has %d messages, want still the 2 digests", got)
	}

	testenv.BrowserDo(t, ctx, "click Release", chromedp.Click("button[type=submit]"))
	var h1 string
	for deadline := time.Now().Add(30 * time.Second); h1 != "Released" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		h1, _ = chromedp.Run(c, chromedp.Text("h1"))
		cancel()
	}
	if h1 != "Released" {
		t.Fatalf("after the click the page says %q, want Released", h1)
	}
	testenv.Screenshot(t, ctx, "digest-released")
	releasedOnlyTo(t, sink.WaitMessages(t, 3, 30*time.Second), alice)
	if it, err := ac.QuarantineGet(t.Context(), id); err != nil || !it.IsReleasedTo(alice) || it.IsReleasedTo(bob) {
		t.Errorf("after the click: %+v, %v; want released to alice only", it, err)
	}

	tok := tokenOf(t, release)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[len(raw)-1] ^= 1
	status, msg := open(t, ctx, strings.Replace(release, tok, base64.RawURLEncoding.EncodeToString(raw), 1), ".err")
	if status != 403 || !strings.Contains(msg, "not valid") {
		t.Errorf("tampered link: %d %q", status, msg)
	}
	testenv.Screenshot(t, ctx, "digest-link-refused")

	status, body := open(t, ctx, list, "body")
	if status != 200 || !strings.Contains(body, "spam for alice and bob") || !strings.Contains(body, "released") {
		t.Errorf("alice's page: %d\n%s", status, body)
	}
	testenv.Screenshot(t, ctx, "digest-list")
}
