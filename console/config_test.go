package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/testenv"
)

// setConfig changes key=value through the API as operator.
func setConfig(t *testing.T, g *gateway, operator, kv, comment string) clusterconf.Revision {
	t.Helper()
	ctx := context.Background()
	c := apiAs(t, g, operator)
	cur, err := c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := clusterconf.ParsePatch(kv)
	if err != nil {
		t.Fatal(err)
	}
	next, err := cur.Settings.With(p)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := c.SetConfig(ctx, admin.ConfigRequest{Settings: next, Comment: comment, Expect: cur.Number})
	if err != nil {
		t.Fatalf("set %s: %v", kv, err)
	}
	return rev
}

// TestConfigPage shows the current revision and the history with each
// revision's changes and author, after changes through the API and
// through the page's own form (refusals in the API's or parser's words).
func TestConfigPage(t *testing.T) {
	g := startGateway(t, nil)
	ctx := browse(t, g, "alice")

	open(t, ctx, g, "/config", "#current")
	if n := testenv.BrowserText(t, ctx, "#current-revision"); n != "1" {
		t.Errorf("current revision %q, want 1", n)
	}
	if s := testenv.BrowserText(t, ctx, "#rev-1"); !strings.Contains(s, "(first revision)") || !strings.Contains(s, "built-in defaults of n1") {
		t.Errorf("revision 1 row: %q", s)
	}
	settings, err := chromedp.Run(ctx, chromedp.TextContent("#settings"))
	if err != nil || !strings.Contains(settings, "thresholds:") {
		t.Errorf("settings YAML %q (%v)", settings, err)
	}

	setConfig(t, g, "carol@desk", "scanner.thresholds.quarantine=7", "more in quarantine")
	open(t, ctx, g, "/config", "#rev-2")
	if n := testenv.BrowserText(t, ctx, "#current-revision"); n != "2" {
		t.Errorf("current revision %q, want 2", n)
	}
	row := testenv.BrowserText(t, ctx, "#rev-2")
	for _, want := range []string{"scanner.thresholds.quarantine: 6 → 7", "carol@desk", "more in quarantine"} {
		if !strings.Contains(row, want) {
			t.Errorf("revision 2 row %q lacks %q", row, want)
		}
	}
	if n := count(t, ctx, "#history .changes li"); n != 1 {
		t.Errorf("%d change lines, want 1", n)
	}
	testenv.Screenshot(t, ctx, "config")

	for _, tc := range []struct {
		name, set, comment string
		bad                bool
		want               string // in the flash
	}{
		{"one key", "scanner.thresholds.quarantine=8", "from the console", false, "stored revision 3; scanner.thresholds.quarantine: 7 -> 8"},
		{"no change", "scanner.thresholds.quarantine=8", "", false, "no change; revision 3 stays"},
		{"unknown key", "scanner.thresholds.quarantin=9", "", true, "scanner.thresholds.quarantine"},
		{"bad value", "scanner.thresholds.quarantine=high", "", true, "scanner.thresholds.quarantine"},
		{"not KEY=VALUE", "scanner", "", true, "want KEY=VALUE"},
		{"two keys", "scanner.thresholds.quarantine=6\nscanner.thresholds.reject=12", "two at once", false, "stored revision 4; scanner.thresholds.quarantine: 8 -> 6; scanner.thresholds.reject: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open(t, ctx, g, "/config", "#config-set")
			testenv.BrowserDo(t, ctx, "fill the form", chromedp.SetValue("#set-lines", tc.set), chromedp.SendKeys("#set-comment", tc.comment))
			submit(t, ctx, "#set-submit")
			msg, bad := flash(t, ctx)
			if bad != tc.bad || !strings.Contains(msg, tc.want) {
				t.Errorf("flash %q (error %v), want %q (error %v)", msg, bad, tc.want, tc.bad)
			}
			if tc.bad {
				if v, _ := chromedp.Run(ctx, chromedp.Value("#set-lines")); v != tc.set {
					t.Errorf("refused form %q, want %q again", v, tc.set)
				}
			}
		})
	}
	open(t, ctx, g, "/config", "#rev-3")
	if row := testenv.BrowserText(t, ctx, "#rev-3"); !strings.Contains(row, "alice@console") || !strings.Contains(row, "from the console") {
		t.Errorf("revision 3 row %q: want by alice@console, comment", row)
	}

	// The page shows revision 4; someone stores 5 meanwhile: the form's
	// change is refused, not laid over theirs unseen.
	open(t, ctx, g, "/config", "#config-set")
	setConfig(t, g, "carol@desk", "scanner.thresholds.quarantine=5", "")
	testenv.BrowserDo(t, ctx, "fill the form", chromedp.SetValue("#set-lines", "scanner.thresholds.quarantine=9"))
	submit(t, ctx, "#set-submit")
	if msg, bad := flash(t, ctx); !bad || !strings.Contains(msg, "changed meanwhile") {
		t.Errorf("stale form: flash %q (error %v), want the API's conflict", msg, bad)
	}
	testenv.Screenshot(t, ctx, "config-conflict")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 800))
	testenv.Screenshot(t, ctx, "config-phone")

	for _, want := range []string{`action="config set" target="scanner.thresholds.quarantine=8" outcome=ok`, `action="config set" target="scanner.thresholds.quarantin=9" outcome=failed`} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
}
