package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/testenv"
)

// TestClusterPageSingleNode: a real node without clustering shows itself
// as one card (role single, healthy, its load and revision) and the
// messages it took in the last hour in the chart, drawn for its id.
func TestClusterPageSingleNode(t *testing.T) {
	g := startGateway(t, nil)
	for _, subj := range []string{"one", "two", "GTUBE"} {
		body := "hello"
		if subj == "GTUBE" {
			body = gtube
		}
		g.send(t, "alice@sender.test", []string{"bob@example.org"}, subj, body)
	}
	g.sink.WaitMessages(t, 2, 10*time.Second)
	ctx := testenv.Browser(t)
	login(t, ctx, g.admin, testToken, "alice")
	// The login's redirect must end before another navigation, or
	// Chromium aborts one of them.
	testenv.BrowserDo(t, ctx, "logged in", chromedp.WaitVisible("#logout"))
	// The message log gets its records from the node's journal in
	// batches: reload until all three are in.
	deadline := time.Now().Add(10 * time.Second)
	for {
		testenv.BrowserDo(t, ctx, "open the cluster page", chromedp.Navigate(g.admin+"/cluster"), chromedp.WaitVisible("#node-n1"))
		if strings.HasPrefix(testenv.BrowserText(t, ctx, "#traffic figcaption"), "3 messages") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	card := testenv.BrowserText(t, ctx, "#node-n1")
	if r := role(t, ctx, "n1"); r != "single" {
		t.Errorf("n1's role %q, want single", r)
	}
	for _, want := range []string{"n1", "(this node)", "Health\nok", "0/2 scans, 0 SMTP sessions", "revision 1"} {
		if !strings.Contains(card, want) {
			t.Errorf("n1's card lacks %q:\n%s", want, card)
		}
	}
	if n := count(t, ctx, "#nodes .card"); n != 1 {
		t.Errorf("%d node cards, want 1", n)
	}
	if n := count(t, ctx, "#vips, #changes"); n != 0 {
		t.Errorf("a single node shows %d VIP or state-change tables", n)
	}
	if caption := testenv.BrowserText(t, ctx, "#traffic figcaption"); !strings.HasPrefix(caption, "3 messages in the last hour") {
		t.Errorf("chart caption %q, want 3 messages", caption)
	}
	// 60 one-minute bars; the messages are in n1's series (bar titles
	// "15:04 n1: 3").
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#traffic svg rect title")).map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, b := range bars {
		name, n, ok := strings.Cut(b, ": ")
		if !ok || !strings.HasSuffix(name, " n1") {
			t.Errorf("bar %q, want one of n1", b)
			continue
		}
		var v int
		for _, r := range n {
			v = v*10 + int(r-'0')
		}
		sum += v
	}
	if sum != 3 {
		t.Errorf("bars %q add up to %d, want 3", bars, sum)
	}
	if r, err := chromedp.Run(ctx, chromedp.AttributeValue("#cluster", "data-refresh")); err != nil || r.Value != "5" {
		t.Errorf("data-refresh = %+v, %v; want 5", r, err)
	}
	testenv.Screenshot(t, ctx, "cluster-single")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 900), chromedp.Reload(), chromedp.WaitVisible("#node-n1"))
	testenv.Screenshot(t, ctx, "cluster-single-phone")
}

// role is the role node id's card shows (its badge is styled upper case).
func role(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue("#node-"+id, "data-role"))
	if err != nil {
		t.Fatalf("role of %s: %v", id, err)
	}
	if badge := testenv.BrowserText(t, ctx, "#node-"+id+" .role"); !strings.EqualFold(badge, r.Value) {
		t.Errorf("%s: badge %q, data-role %q", id, badge, r.Value)
	}
	return r.Value
}
