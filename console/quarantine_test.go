package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/kv"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/testenv"
)

// loginAt logs the browser in, from the login a page without a session
// goes to.
func loginAt(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	testenv.BrowserDo(t, ctx, "open the console", chromedp.Navigate(base+"/quarantine"), chromedp.WaitVisible("#token"))
	login(t, ctx, "", testToken, "alice")
	testenv.BrowserDo(t, ctx, "logged in", chromedp.WaitVisible("#logout"))
}

// rowIDs are the ids of the list's rows on the page now.
func rowIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#items tbody tr")).map(r => r.dataset.id)`))
	if err != nil {
		t.Fatalf("rows: %v", err)
	}
	return ids
}

// sessionClient is an HTTP client with the browser's session.
func sessionClient(t *testing.T, ctx context.Context, base string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{sessionCookie(t, ctx)})
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestQuarantineFindRelease drives the quarantine pages in Chromium
// against a real node with real mail: GTUBE messages are found by
// recipient, subject and verdict (and the others are not), one is
// released from its page to one of its two recipients, which the
// downstream then has with exactly that recipient, and two are deleted
// at once from the list.
func TestQuarantineFindRelease(t *testing.T) {
	g := startGateway(t, nil)
	bob, carol, dave := "bob@example.org", "carol@example.org", "dave@example.org"
	target := g.send(t, "spammer@bad.example", []string{bob, carol}, "Cheap pills today", gtube)
	other := g.send(t, "other@else.example", []string{dave}, "Unrelated offer", gtube)
	g.send(t, "friend@good.example", []string{bob}, "Lunch?", "clean text") // delivered, not held
	g.sink.WaitMessages(t, 1, 30*time.Second)

	ctx := testenv.Browser(t)
	loginAt(t, ctx, g.admin)
	testenv.BrowserDo(t, ctx, "open the quarantine", chromedp.Navigate(g.admin+"/quarantine"), chromedp.WaitVisible("#filters"))
	if got := rowIDs(t, ctx); !slices.Equal(got, []string{other, target}) {
		t.Errorf("unfiltered list %v, want %v (newest first, the clean one not there)", got, []string{other, target})
	}
	testenv.Screenshot(t, ctx, "quarantine-list")

	tests := []struct {
		name   string
		fields map[string]string
		want   []string
	}{
		{"recipient", map[string]string{"#f-rcpt": carol}, []string{target}},
		{"recipient domain", map[string]string{"#f-rcpt": "@example.org"}, []string{other, target}},
		{"subject any case", map[string]string{"#f-subject": "PILLS"}, []string{target}},
		{"sender", map[string]string{"#f-sender": "@else.example"}, []string{other}},
		{"verdict", map[string]string{"#f-verdict": "spam", "#f-since": "1h"}, []string{other, target}},
		{"verdict none", map[string]string{"#f-verdict": "virus"}, nil},
		{"subject none", map[string]string{"#f-subject": "lunch"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(g.admin + "/quarantine"), chromedp.WaitVisible("#filters")}
			for sel, v := range tc.fields {
				if strings.HasPrefix(sel, "#f-verdict") {
					steps = append(steps, chromedp.SetValue(sel, v))
				} else {
					steps = append(steps, chromedp.SendKeys(sel, v))
				}
			}
			testenv.BrowserDo(t, ctx, "fill the filter", steps...)
			submit(t, ctx, "#search")
			got := rowIDs(t, ctx)
			if !slices.Equal(got, tc.want) {
				t.Errorf("search %v: rows %v, want %v", tc.fields, got, tc.want)
			}
			if tc.want == nil {
				if msg := testenv.BrowserText(t, ctx, "#empty"); !strings.Contains(msg, "No quarantined messages match") {
					t.Errorf("empty result says %q", msg)
				}
			}
		})
	}
	// A filter the API refuses is shown in the API's words.
	testenv.BrowserDo(t, ctx, "bad filter", chromedp.Navigate(g.admin+"/quarantine?rcpt=bob"), chromedp.WaitVisible("#list-error"))
	if msg := testenv.BrowserText(t, ctx, "#list-error"); !strings.Contains(msg, `"bob" is neither an address nor a domain`) {
		t.Errorf("refused filter shown as %q", msg)
	}

	// Open it from the search, release it to carol only.
	testenv.BrowserDo(t, ctx, "open the message",
		chromedp.Navigate(g.admin+"/quarantine?rcpt="+url.QueryEscape(carol)),
		chromedp.Click(`#items a.qid`),
		chromedp.WaitVisible("#release"))
	if got := testenv.BrowserText(t, ctx, "#qid"); got != target {
		t.Fatalf("opened %q, want %s", got, target)
	}
	for sel, want := range map[string]string{"#verdict": "spam", "#symbols": "GTUBE", "#headers": "Subject: Cheap pills today", ".part pre": gtube} {
		if got := testenv.BrowserText(t, ctx, sel); !strings.Contains(got, want) {
			t.Errorf("message page %s = %q, want it to contain %q", sel, got, want)
		}
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#learn-spam, #release-ham").length`)); n != 0 {
		t.Errorf("learn buttons shown on a node without a learning engine")
	}
	testenv.Screenshot(t, ctx, "quarantine-message")
	testenv.BrowserDo(t, ctx, "release to carol", chromedp.SetValue("#release-rcpt", carol), chromedp.Click("#release"), chromedp.WaitVisible(".flash"))
	if msg := testenv.BrowserText(t, ctx, ".flash"); msg != "released 1" {
		t.Errorf("after the release the page says %q, want \"released 1\"", msg)
	}
	var released string
	deadline := time.Now().Add(30 * time.Second)
	for released == "" && time.Now().Before(deadline) {
		for _, m := range g.sink.Messages(t) {
			if strings.Contains(m, "Cheap pills today") {
				released = m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if released == "" {
		t.Fatal("the released message did not reach the downstream")
	}
	if rc := regexp.MustCompile(`(?m)^X-Rcpt-Args: .*$`).FindAllString(released, -1); len(rc) != 1 || !strings.Contains(rc[0], carol) {
		t.Errorf("released with recipients %q, want carol only", rc)
	}
	if got := testenv.BrowserText(t, ctx, `#rcpts li[data-rcpt="`+carol+`"]`); !strings.Contains(got, "released") {
		t.Errorf("carol's line after the release: %q", got)
	}
	if got := testenv.BrowserText(t, ctx, `#rcpts li[data-rcpt="`+bob+`"]`); !strings.Contains(got, "held") {
		t.Errorf("bob's line after the release to carol: %q", got)
	}
	testenv.Screenshot(t, ctx, "quarantine-released")
	if !regexp.MustCompile(`msg="quarantine released" id=` + target + ` by=\S*alice@console`).MatchString(g.log.String()) {
		t.Errorf("the API's log does not name the console user for the release")
	}

	// The raw download is a file, never a page.
	hc := sessionClient(t, ctx, g.admin)
	resp, err := hc.Get(g.admin + "/quarantine/" + target + "/raw")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || ct != "application/octet-stream" ||
		!strings.HasPrefix(cd, "attachment") || !strings.Contains(string(body), gtube) {
		t.Errorf("raw download: %d %q %q (%d bytes)", resp.StatusCode, ct, cd, len(body))
	}
	// A form without its CSRF token does nothing.
	resp, err = hc.PostForm(g.admin+"/quarantine/delete", url.Values{"id": {other}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("delete without CSRF token: %d, want 403", resp.StatusCode)
	}

	// Bulk delete: two more, ticked in the list, deleted at once.
	d1 := g.send(t, "spammer@bad.example", []string{dave}, "Bulk one", gtube)
	d2 := g.send(t, "spammer@bad.example", []string{dave}, "Bulk two", gtube)
	testenv.BrowserDo(t, ctx, "tick two and delete",
		chromedp.Navigate(g.admin+"/quarantine?rcpt="+url.QueryEscape(dave)),
		chromedp.WaitVisible("#items"),
		chromedp.Click(`input[name=id][value="`+d1+`"]`),
		chromedp.Click(`input[name=id][value="`+d2+`"]`),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click("#bulk-delete"),
		chromedp.WaitVisible(".flash"))
	if msg := testenv.BrowserText(t, ctx, ".flash"); msg != "deleted 2" {
		t.Errorf("after the bulk delete the page says %q, want \"deleted 2\"", msg)
	}
	if got := rowIDs(t, ctx); !slices.Equal(got, []string{other}) {
		t.Errorf("after deleting %s and %s the list for dave shows %v, want only %s", d1, d2, got, other)
	}
	// Deleting what is gone says so per id.
	testenv.BrowserDo(t, ctx, "delete again", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`
		const f = document.getElementById("bulk");
		for (const id of [%q, %q]) { const i = document.createElement("input"); i.type = "hidden"; i.name = "id"; i.value = id; f.appendChild(i); }
		f.action = "/quarantine/delete"; f.submit();`, d1, other)), chromedp.WaitVisible(".flash"))
	if msg := testenv.BrowserText(t, ctx, ".flash.bad"); !strings.HasPrefix(msg, "deleted 1, failed 1: "+d1+": no quarantined message") {
		t.Errorf("a delete of one gone and one held says %q", msg)
	}
	for _, want := range []string{"action=\"quarantine delete\" target=" + d1, "action=\"quarantine release\" target=" + target} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("console audit lacks %q", want)
		}
	}

	// On a phone.
	testenv.BrowserDo(t, ctx, "narrow", chromedp.EmulateViewport(400, 800), chromedp.Navigate(g.admin+"/quarantine"), chromedp.WaitVisible("#filters"))
	testenv.Screenshot(t, ctx, "quarantine-list-phone")
	testenv.BrowserDo(t, ctx, "narrow message", chromedp.Navigate(g.admin+"/quarantine/"+target), chromedp.WaitVisible("#release"))
	testenv.Screenshot(t, ctx, "quarantine-message-phone")
}

// hostile is what a sender writes to make a console run its script.
const hostile = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`

// TestQuarantineHostileMessage: a message with script and image tags in
// its subject, its From display name, its text part and its HTML part is
// shown as text on the list and on its page, and runs nothing.
func TestQuarantineHostileMessage(t *testing.T) {
	g := startGateway(t, nil)
	raw := strings.ReplaceAll(`From: "`+hostile+`" <evil@bad.example>
To: bob@example.org
Subject: `+hostile+`
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

plain `+hostile+`
`+gtube+`
--b1
Content-Type: text/html; charset=utf-8

<html><head><title>t</title><script>window.__pwned=3</script></head><body><p>html part</p>`+hostile+`<a href="http://198.18.0.9/x">click</a><iframe src="http://198.18.0.9/"></iframe></body></html>
--b1
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b1--
`, "\n", "\r\n")
	id := g.sendRaw(t, "evil@bad.example", []string{"bob@example.org"}, raw)

	ctx := testenv.Browser(t)
	loginAt(t, ctx, g.admin)
	check := func(page string) {
		t.Helper()
		pwned, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.__pwned)`))
		if err != nil || pwned != "undefined" {
			t.Errorf("%s: window.__pwned = %q, %v: the message's script ran", page, pwned, err)
		}
		// The console's own script is the only one; no image at all.
		scripts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("script, img, iframe")).map(e => e.outerHTML)`))
		if err != nil || len(scripts) != 1 || !strings.Contains(scripts[0], `src="/static/console.js"`) {
			t.Errorf("%s: script/img/iframe elements %q, %v; want only the console's script", page, scripts, err)
		}
	}
	testenv.BrowserDo(t, ctx, "list", chromedp.Navigate(g.admin+"/quarantine"), chromedp.WaitVisible("#items"))
	if got := testenv.BrowserText(t, ctx, "#items td.subject"); got != hostile {
		t.Errorf("list subject %q, want the text %q", got, hostile)
	}
	check("list")
	testenv.Screenshot(t, ctx, "quarantine-hostile-list")

	testenv.BrowserDo(t, ctx, "message", chromedp.Navigate(g.admin+"/quarantine/"+id), chromedp.WaitVisible("#release"))
	check("message page")
	if got := testenv.BrowserText(t, ctx, "#subject"); got != hostile {
		t.Errorf("message page subject %q, want the text %q", got, hostile)
	}
	parts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".part pre")).map(e => e.textContent)`))
	if err != nil || len(parts) != 2 {
		t.Fatalf("text parts %q, %v; want the plain and the HTML one", parts, err)
	}
	if !strings.Contains(parts[0], "plain "+hostile) {
		t.Errorf("text part shown as %q, want the tags as text", parts[0])
	}
	if !strings.Contains(parts[1], "html part") || !strings.Contains(parts[1], "click <http://198.18.0.9/x>") || strings.Contains(parts[1], "__pwned") {
		t.Errorf("HTML part shown as %q, want its text and link target, no script", parts[1])
	}
	if got := testenv.BrowserText(t, ctx, "#headers"); !strings.Contains(got, `From: "`+hostile+`"`) {
		t.Errorf("headers shown as %q", got)
	}
	if got := testenv.BrowserText(t, ctx, "#attachments"); !strings.Contains(got, "invoice.pdf") || !strings.Contains(got, "application/pdf") || !strings.Contains(got, "9 B") {
		t.Errorf("attachments shown as %q, want invoice.pdf, application/pdf, 9 B", got)
	}
	testenv.Screenshot(t, ctx, "quarantine-hostile-message")
}

// TestQuarantinePaging puts 2000 items in a real Redis store behind the
// node and follows the list's "Older" links: every item is shown once,
// newest first, down to the last; also with a filter.
func TestQuarantinePaging(t *testing.T) {
	r := testenv.StartRedis(t)
	g := startGateway(t, func(c *config.Config) { c.Store.Redis = r.URL })
	rc, err := kv.Dial(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	q := quarantine.NewRedis(rc)
	ctx := context.Background()
	const n = 2000
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var all, odd []string
	for i := range n {
		rcpt := "even@example.org"
		if i%2 == 1 {
			rcpt = "odd@example.org"
		}
		it := quarantine.Item{
			// Three items per second: ties in time are broken by id.
			ID: fmt.Sprintf("P%05d", i), Time: start.Add(time.Duration(i/3) * time.Second), Sender: "s@bad.example",
			Recipients: []string{rcpt}, Verdict: "spam", Score: 10, Subject: fmt.Sprintf("paging %d", i), Node: "n1",
		}
		if err := q.Put(ctx, it, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		all = append(all, it.ID)
		if i%2 == 1 {
			odd = append(odd, it.ID)
		}
	}
	slices.Reverse(all)
	slices.Reverse(odd)

	bctx := testenv.Browser(t)
	loginAt(t, bctx, g.admin)
	hc := sessionClient(t, bctx, g.admin)
	rowRE := regexp.MustCompile(`<tr data-id="([^"]+)">`)
	olderRE := regexp.MustCompile(`<a href="([^"]+)" id="older">`)
	for _, tc := range []struct {
		name, first string
		want        []string
	}{
		{"all", "/quarantine", all},
		{"odd recipient", "/quarantine?rcpt=odd@example.org&verdict=spam", odd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			next, pages := tc.first, 0
			for next != "" {
				if pages++; pages > n/50+2 {
					t.Fatalf("more pages than there are items for")
				}
				resp, err := hc.Get(g.admin + next)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d", next, resp.StatusCode)
				}
				rows := rowRE.FindAllStringSubmatch(string(b), -1)
				if len(rows) > 50 {
					t.Fatalf("%s: %d rows, want at most 50", next, len(rows))
				}
				for _, m := range rows {
					got = append(got, m[1])
				}
				next = ""
				if m := olderRE.FindStringSubmatch(string(b)); m != nil {
					next = strings.ReplaceAll(m[1], "&amp;", "&")
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pages gave %d items (%v … %v), want %d once each, newest first", len(got), got[:min(3, len(got))], got[max(0, len(got)-3):], len(tc.want))
			}
			if want := (len(tc.want) + 49) / 50; pages != want {
				t.Errorf("%d pages, want %d (no empty page at the end)", pages, want)
			}
		})
	}
	testenv.BrowserDo(t, bctx, "a later page", chromedp.Navigate(g.admin+"/quarantine"), chromedp.Click("#older"), chromedp.WaitVisible("#newest"))
	testenv.Screenshot(t, bctx, "quarantine-page-2")
}
