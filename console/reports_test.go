package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/testenv"
)

// TestReportsPage shows today's report (built from the log) with its
// totals and the charts' bars, yesterday's (stored by the node at start)
// and the way between days.
func TestReportsPage(t *testing.T) {
	g := startGateway(t, nil)
	g.send(t, "carol@sender.example", []string{"dave@example.org"}, "hello", "clean words")
	g.send(t, "carol@sender.example", []string{"dave@example.org"}, "again", "more clean words")
	g.send(t, "spammer@junk.example", []string{"eve@example.org"}, "win", gtube)
	ctx := browse(t, g, "alice")
	now := time.Now().UTC()
	today, yesterday := now.Format(time.DateOnly), now.AddDate(0, 0, -1).Format(time.DateOnly)

	open(t, ctx, g, "/reports?day="+today, "#report-total")
	if n := testenv.BrowserText(t, ctx, "#report-total"); n != "3" {
		t.Errorf("today's total %q, want 3", n)
	}
	if s := testenv.BrowserText(t, ctx, "#report-state"); !strings.Contains(s, "built now from the message log") {
		t.Errorf("today's state %q", s)
	}
	sections := testenv.BrowserText(t, ctx, "#report-sections")
	for _, want := range []string{"By action", "2\tdeliver", "1\tquarantine", "By verdict", "2\tclean", "1\tspam", "By node", "3\tn1", "spammer@junk.example"} {
		if !strings.Contains(sections, want) {
			t.Errorf("report lacks %q:\n%s", want, sections)
		}
	}
	if count(t, ctx, "#next-day") > 0 {
		t.Error("today's report links to tomorrow")
	}

	// The charts: one bar a day, today's stacked of its verdicts and nodes.
	for _, tc := range []struct{ chart, bar string }{
		{"#chart-verdict", today[5:] + " clean: 2"},
		{"#chart-verdict", today[5:] + " spam: 1"},
		{"#chart-node", today[5:] + " n1: 3"},
	} {
		bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(`+jsString(tc.chart+" svg rect title")+`), e => e.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, b := range bars {
			found = found || b == tc.bar
		}
		if !found {
			t.Errorf("%s has bars %q, want one %q", tc.chart, bars, tc.bar)
		}
	}
	if n := count(t, ctx, "#chart-verdict svg rect title"); n != 2 {
		t.Errorf("%d verdict bars, want 2 (the days before have no mail: no bar)", n)
	}
	testenv.Screenshot(t, ctx, "reports-today")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 800))
	testenv.Screenshot(t, ctx, "reports-today-phone")
	testenv.BrowserDo(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))

	// Without a day: yesterday's, the one the node stored at start.
	open(t, ctx, g, "/reports", "#report-total")
	if d := testenv.BrowserText(t, ctx, "#report-day"); d != yesterday {
		t.Errorf("default day %q, want yesterday %s", d, yesterday)
	}
	if s := testenv.BrowserText(t, ctx, "#report-state"); !strings.Contains(s, "stored, written by n1") {
		t.Errorf("yesterday's state %q", s)
	}
	if s := testenv.BrowserText(t, ctx, "#report-empty"); !strings.Contains(s, "No messages on "+yesterday) {
		t.Errorf("yesterday's empty state %q", s)
	}
	testenv.BrowserDo(t, ctx, "next day", chromedp.Click("#next-day"), chromedp.WaitVisible("#report-total"))
	if d := testenv.BrowserText(t, ctx, "#report-day"); d != today {
		t.Errorf("next day went to %q, want %s", d, today)
	}
	testenv.BrowserDo(t, ctx, "previous day", chromedp.Click("#prev-day"), chromedp.WaitVisible("#report-total"))
	if d := testenv.BrowserText(t, ctx, "#report-day"); d != yesterday {
		t.Errorf("previous day went to %q, want %s", d, yesterday)
	}

	for _, bad := range []string{"2999-01-01", "yesterday-ish"} {
		open(t, ctx, g, "/reports?day="+bad, "#report-error")
		if s := testenv.BrowserText(t, ctx, "#report-error"); !strings.Contains(s, "want a date") {
			t.Errorf("day %s: %q", bad, s)
		}
	}
}
