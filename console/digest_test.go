package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

// TestDigestPage: the digests go out on demand from the console, once per
// recipient and day, and opt-outs are kept from the page.
func TestDigestPage(t *testing.T) {
	g := startGateway(t, func(c *config.Config) {
		c.Digest = config.Digest{Enabled: true, URL: "http://mxgate.test:8025"}
	})
	g.send(t, "spammer@bad.test", []string{"alice@example.org"}, "win a prize", gtube)
	g.send(t, "spammer@bad.test", []string{"bob@example.org"}, "win a prize", gtube)
	ctx := testenv.Browser(t)
	loginAt(t, ctx, g.admin)

	testenv.BrowserDo(t, ctx, "open the digests", chromedp.Navigate(g.admin+"/digest"), chromedp.WaitVisible("#digest-send"))
	if s := testenv.BrowserText(t, ctx, "#digest-settings"); !strings.Contains(s, "06:00 UTC") || !strings.Contains(s, "http://mxgate.test:8025") {
		t.Errorf("settings shown: %q", s)
	}
	testenv.BrowserDo(t, ctx, "opt bob out", chromedp.SendKeys(`form[action="/digest/optout"] input[name=rcpt]`, "bob@example.org"))
	submit(t, ctx, `form[action="/digest/optout"] button`)
	if msg, bad := flash(t, ctx); bad || !strings.Contains(msg, "bob@example.org gets no more digests") {
		t.Errorf("opt-out: %q (error %v)", msg, bad)
	}
	if s := testenv.BrowserText(t, ctx, "#optouts"); !strings.Contains(s, "bob@example.org") {
		t.Errorf("opt-outs shown: %q", s)
	}
	testenv.Screenshot(t, ctx, "digest")

	// outcomes sends and returns "rcpt=outcome" per row.
	outcomes := func() string {
		t.Helper()
		submit(t, ctx, `#digest-send button`)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#digest-outcomes tbody tr")).map(function (r) { return r.cells[0].textContent + "=" + r.cells[1].textContent; })`))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(v, ", ")
	}
	first := outcomes()
	if first != "alice@example.org=sent, bob@example.org=opted out" {
		t.Errorf("first send: %q", first)
	}
	testenv.Screenshot(t, ctx, "digest-sent")
	msgs := g.sink.WaitMessages(t, 1, 30*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "alice@example.org") {
		t.Fatalf("downstream got %d messages, want alice's digest", len(msgs))
	}
	if second := outcomes(); second != "alice@example.org=already sent today, bob@example.org=opted out" && second != "alice@example.org=nothing new, bob@example.org=opted out" {
		t.Errorf("second send the same day: %q", second)
	}
	time.Sleep(time.Second) // a second digest would be on its way by now
	if n := len(g.sink.Messages(t)); n != 1 {
		t.Errorf("downstream got %d messages after sending twice, want 1", n)
	}
	if !strings.Contains(g.log.String(), "action=\"digest send\"") {
		t.Error("no audit line for the digest send")
	}
}
