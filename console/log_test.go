package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/testenv"
)

// apiAs is an admin API client of g acting for operator.
func apiAs(t *testing.T, g *gateway, operator string) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(g.admin, testToken)
	if err != nil {
		t.Fatal(err)
	}
	c.Operator = operator
	return c
}

// TestLogPage searches the message log in the console and follows one
// message from its arrival to its release by an operator through the API.
func TestLogPage(t *testing.T) {
	g := startGateway(t, nil)
	clean := g.send(t, "carol@sender.example", []string{"dave@example.org"}, "lunch", "see you at noon")
	spam := g.send(t, "spammer@junk.example", []string{"eve@example.org", "frank@example.org"}, "<script>alert(1)</script> win", gtube)
	if _, err := apiAs(t, g, "bob@desk").QuarantineRelease(context.Background(), spam, admin.ReleaseOptions{}); err != nil {
		t.Fatalf("release %s: %v", spam, err)
	}
	ctx := browse(t, g, "alice")

	open(t, ctx, g, "/log", "#log")
	if n := count(t, ctx, "#log tbody tr"); n != 3 {
		t.Errorf("%d records, want 3 (deliver, quarantine, release)", n)
	}
	first := testenv.BrowserText(t, ctx, "#log tbody tr")
	if !strings.Contains(first, "release") || !strings.Contains(first, "bob@desk") {
		t.Errorf("newest record is %q, want the release by bob@desk", first)
	}
	testenv.Screenshot(t, ctx, "log")

	for _, tc := range []struct {
		name, query string
		want        []string // the queue ids found, newest first
		error       string
	}{
		{"by sender", "?sender=spammer@junk.example", []string{spam, spam}, ""},
		{"by sender domain", "?sender=@sender.example", []string{clean}, ""},
		{"by recipient", "?rcpt=frank@example.org", []string{spam, spam}, ""},
		{"by action", "?action=deliver", []string{clean}, ""},
		{"today", "?day=today&action=quarantine", []string{spam}, ""},
		{"nothing", "?sender=nobody@nowhere.example", nil, ""},
		{"bad time", "?since=last+tuesday", nil, "since:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open(t, ctx, g, "/log"+tc.query, "#log-search")
			if tc.error != "" {
				if s := testenv.BrowserText(t, ctx, "#log-error"); !strings.Contains(s, tc.error) {
					t.Errorf("error %q lacks %q", s, tc.error)
				}
				return
			}
			ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#log a.msgid"), a => a.textContent)`))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("found %v, want %v", ids, tc.want)
			}
			if len(tc.want) == 0 && !strings.Contains(testenv.BrowserText(t, ctx, "#log-empty"), "No log records match") {
				t.Error("no empty state")
			}
		})
	}

	// Follow the quarantined message from the search, by its link.
	open(t, ctx, g, "/log?sender=spammer@junk.example", "#log")
	testenv.BrowserDo(t, ctx, "follow the message", chromedp.Click("#log a.msgid"), chromedp.WaitVisible("#timeline"))
	steps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#timeline .title"), e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Received from 127.0.0.1|Scanned on n1|Quarantined|Released by bob@desk"; !strings.HasPrefix(strings.Join(steps, "|"), want) {
		t.Errorf("timeline %q, want %q", strings.Join(steps, "|"), want)
	}
	tl := testenv.BrowserText(t, ctx, "#timeline")
	for _, want := range []string{"spammer@junk.example", "eve@example.org, frank@example.org", "GTUBE", "spam", "HELO", "250"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}
	if href, _ := chromedp.Run(ctx, chromedp.AttributeValue("#timeline a.qlink", "href")); href.Value != "/quarantine/"+spam {
		t.Errorf("quarantine link %q, want /quarantine/%s", href.Value, spam)
	}
	testenv.Screenshot(t, ctx, "log-message")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 800))
	testenv.Screenshot(t, ctx, "log-message-phone")
	testenv.BrowserDo(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))

	// Ids in any case, by the search form or the path; the delivered one
	// ends with the downstream's reply.
	for _, path := range []string{"/log?id=" + strings.ToLower(clean), "/log/" + strings.ToLower(clean)} {
		open(t, ctx, g, path, "#timeline")
		if id := testenv.BrowserText(t, ctx, "#msgid"); id != clean {
			t.Errorf("%s shows %q, want %s", path, id, clean)
		}
		if tl := testenv.BrowserText(t, ctx, "#timeline"); !strings.Contains(tl, "Delivered") || !strings.Contains(tl, "downstream replied") {
			t.Errorf("%s: timeline lacks the delivery:\n%s", path, tl)
		}
	}
	open(t, ctx, g, "/log/NOSUCHID", "#log-empty")
	if s := testenv.BrowserText(t, ctx, "#log-empty"); !strings.Contains(s, "no record of NOSUCHID") {
		t.Errorf("unknown id: %q", s)
	}
}
