package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/testenv"
)

// browse is a browser logged into g's console as name.
func browse(t *testing.T, g *gateway, name string) context.Context {
	t.Helper()
	ctx := testenv.Browser(t)
	login(t, ctx, g.admin, testToken, name)
	testenv.BrowserDo(t, ctx, "logged in", chromedp.WaitVisible("#logout"))
	return ctx
}

// open navigates to path of g's console and waits for sel.
func open(t *testing.T, ctx context.Context, g *gateway, path, sel string) {
	t.Helper()
	testenv.BrowserDo(t, ctx, "open "+path, chromedp.Navigate(g.admin+path), chromedp.WaitVisible(sel))
}

// submit clicks sel (answering yes to a data-confirm question) and waits
// for the page the form leads to.
func submit(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	testenv.BrowserDo(t, ctx, "submit "+sel,
		chromedp.Evaluate[chromedp.Void](`document.body.setAttribute("data-old", "1"); window.confirm = function () { return true; };`),
		chromedp.Click(sel),
		chromedp.WaitReady("body:not([data-old])"),
	)
}

// flash is the outcome the page shows once ("" for none) and whether it
// is an error.
func flash(t *testing.T, ctx context.Context) (string, bool) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`(function () { var f = document.querySelector(".flash"); return f ? [f.textContent, f.classList.contains("bad") ? "bad" : "ok"] : ["", ""]; })()`))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(v[0]), v[1] == "bad"
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// smtpAnswer tries one transaction up to the recipients and returns the
// first refusal (nil = every command was accepted).
func smtpAnswer(t *testing.T, g *gateway, from, to string) *smtp.SMTPError {
	t.Helper()
	c, err := smtp.Dial(g.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Mail(from, nil)
	if err == nil {
		err = c.Rcpt(to, nil)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if err != nil {
		t.Fatalf("SMTP from %s to %s: %v", from, to, err)
	}
	_ = c.Reset()
	return nil
}

// TestListsPage adds, refuses and removes list entries in the console and
// proves with SMTP transactions that the page's entries are the live ones.
func TestListsPage(t *testing.T) {
	g := startGateway(t, nil)
	ctx := browse(t, g, "alice")

	open(t, ctx, g, "/lists", "#lists-add")
	if s := testenv.BrowserText(t, ctx, "#lists-empty"); !strings.Contains(s, "empty") {
		t.Errorf("empty lists say %q", s)
	}
	testenv.Screenshot(t, ctx, "lists-empty")

	for _, tc := range []struct {
		name, kind, value, rcpt, comment string
		bad                              bool
		want                             []string // in the flash
	}{
		{"global block", "block", "spammer@Bad.Example", "", "phishing run", false, []string{"added block spammer@bad.example (global)"}},
		{"per-recipient allow", "allow", "@friend.example", "boss@example.org", "", false, []string{"added allow @friend.example (for boss@example.org)"}},
		{"never matches", "block", "*@x.com", "", "", true, []string{`list value "*@x.com" can never match`, "@x.com"}},
		{"bare domain", "block", "x.com", "", "", true, []string{"bare domain: write @x.com"}},
		{"bad recipient", "allow", "@friend.example", "not an address", "", true, []string{"not an address"}},
		{"already listed", "block", "spammer@bad.example", "", "", false, []string{"already listed: block spammer@bad.example (global)", "nothing changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open(t, ctx, g, "/lists", "#lists-add")
			testenv.BrowserDo(t, ctx, "fill the form",
				chromedp.SetValue("#add-kind", tc.kind),
				chromedp.SendKeys("#add-value", tc.value),
				chromedp.SendKeys("#add-rcpt", tc.rcpt),
				chromedp.SendKeys("#add-comment", tc.comment),
			)
			submit(t, ctx, "#add")
			msg, bad := flash(t, ctx)
			if bad != tc.bad {
				t.Errorf("flash %q: error %v, want %v", msg, bad, tc.bad)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("flash %q lacks %q", msg, w)
				}
			}
			if tc.bad {
				// The refused form comes back as typed.
				if v, _ := chromedp.Run(ctx, chromedp.Value("#add-value")); v != tc.value {
					t.Errorf("refused form's value %q, want %q again", v, tc.value)
				}
				testenv.Screenshot(t, ctx, "refused")
			}
		})
	}

	open(t, ctx, g, "/lists", "#lists")
	if n := count(t, ctx, "#lists tr.entry"); n != 2 {
		t.Errorf("%d entries shown, want 2", n)
	}
	table := testenv.BrowserText(t, ctx, "#lists")
	for _, want := range []string{"spammer@bad.example", "phishing run", "@friend.example", "for boss@example.org", "global", "by alice@console"} {
		if !strings.Contains(table, want) {
			t.Errorf("lists table lacks %q:\n%s", want, table)
		}
	}
	testenv.Screenshot(t, ctx, "lists")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 800))
	testenv.Screenshot(t, ctx, "lists-phone")
	testenv.BrowserDo(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))

	for _, tc := range []struct {
		query string
		want  int
	}{{"?kind=allow", 1}, {"?kind=block", 1}, {"?scope=rcpt", 1}, {"?scope=global", 1}, {"?q=PHISHING", 1}, {"?kind=allow&scope=global", 0}} {
		open(t, ctx, g, "/lists"+tc.query, "#lists-filter")
		if n := count(t, ctx, "#lists tr.entry"); n != tc.want {
			t.Errorf("/lists%s: %d entries, want %d", tc.query, n, tc.want)
		}
	}

	// The entry is the SMTP path's: the listed sender is refused, another is not.
	if se := smtpAnswer(t, g, "spammer@bad.example", "someone@example.org"); se == nil || se.Code/100 != 5 {
		t.Errorf("listed sender: %v, want a 5xx refusal", se)
	}
	if se := smtpAnswer(t, g, "friend@else.example", "someone@example.org"); se != nil {
		t.Errorf("unlisted sender refused: %v", se)
	}

	open(t, ctx, g, "/lists?kind=block", "#lists")
	submit(t, ctx, "#lists .remove")
	if msg, bad := flash(t, ctx); bad || msg != "removed block spammer@bad.example (global)" {
		t.Errorf("remove: flash %q (error %v)", msg, bad)
	}
	if loc := location(t, ctx); loc != g.admin+"/lists?kind=block" {
		t.Errorf("after remove at %s, want back at the filtered list", loc)
	}
	if count(t, ctx, "#lists tr.entry") != 0 || !strings.Contains(testenv.BrowserText(t, ctx, "#lists-empty"), "No list entries match") {
		t.Error("the removed entry is still listed")
	}
	if se := smtpAnswer(t, g, "spammer@bad.example", "someone@example.org"); se != nil {
		t.Errorf("removed entry still refuses: %v", se)
	}

	for _, want := range []string{`action="list add" target="block spammer@Bad.Example (global)" outcome=ok`,
		`action="list add" target="block *@x.com (global)" outcome=failed`, `action="list remove"`, "user=alice"} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
}
