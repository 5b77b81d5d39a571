package main

// The console's Cluster page on a real three-node cluster (issue 13): a
// browser in the root namespace reaches the admin listener on the VIP
// through a forwarded loopback port, as an administrator's browser reaches
// the VIP; the page follows the master when the master is killed.

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/testenv"
)

func TestConsoleClusterFailover(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaConf{prio: 200, weight: 100}, aaConf{prio: 150, weight: 100}, aaConf{prio: 100, weight: 100})
	vipAdmin := net.JoinHostPort(testenv.LabVIP, fmt.Sprint(aaAdmin))
	for i := range 4 {
		l.sendVIP(fmt.Sprintf("console %d", i))
	}

	base := "http://" + testenv.Forward(t, func(ctx context.Context) (net.Conn, error) {
		return l.lab.Dial(ctx, l.lab.Client(), vipAdmin)
	})
	ctx := testenv.Browser(t)
	testenv.BrowserDo(t, ctx, "open the login", chromedp.Navigate(base+"/login"), chromedp.WaitVisible("#token"))
	testenv.BrowserDo(t, ctx, "log in",
		chromedp.SendKeys("#token", aaToken), chromedp.SendKeys("#name", "ops"), chromedp.Click("#login"),
		chromedp.WaitVisible("#logout"))
	testenv.BrowserDo(t, ctx, "open the cluster page", chromedp.Navigate(base+"/cluster"), chromedp.WaitVisible("#node-n3"))

	want := map[string]string{"n1": "master", "n2": "backup", "n3": "backup"}
	waitRoles(t, ctx, "before the failover", want, 15*time.Second)
	if v := testenv.BrowserText(t, ctx, "#vips"); !strings.Contains(v, testenv.LabVIP) || !strings.Contains(v, "n1") {
		t.Errorf("VIP table before the failover: %q, want %s held by n1", v, testenv.LabVIP)
	}
	if c := testenv.BrowserText(t, ctx, "#node-n1"); !strings.Contains(c, "(this node)") || !strings.Contains(c, "Priority\n200") {
		t.Errorf("n1's card (the page is served by the master): %q", c)
	}
	if c := testenv.BrowserText(t, ctx, "#changes"); !strings.Contains(c, "backup → master") {
		t.Errorf("recent changes lack n1 becoming master: %q", c)
	}
	// The message log gets its records from each node's journal in
	// batches; the page reloads itself meanwhile.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		c, err := chromedp.Run(ctx, chromedp.Text("#traffic figcaption"))
		if err == nil && strings.HasPrefix(c, "4 messages") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("chart caption %q (%v), want 4 messages", c, err)
			break
		}
	}
	testenv.Screenshot(t, ctx, "cluster-before")

	// kill -9 the master: the page, reloading itself through the same VIP
	// URL, is served by n2 now (the session carries over: the same token
	// signs it on every node) and shows n2 master and n1 gone.
	killed := time.Now()
	l.nodes[0].kill9()
	l.nodes[1].waitState("master", 10*time.Second)
	want = map[string]string{"n1": "gone", "n2": "master", "n3": "backup"}
	waitRoles(t, ctx, "after n1 was killed", want, 30*time.Second)
	t.Logf("the page showed the new master %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	if c := testenv.BrowserText(t, ctx, "#node-n2"); !strings.Contains(c, "(this node)") {
		t.Errorf("n2's card is not this node's after the failover: %q", c)
	}
	if v := testenv.BrowserText(t, ctx, "#vips"); !strings.Contains(v, "n2") || strings.Contains(v, "n1") {
		t.Errorf("VIP table after the failover: %q, want held by n2 only", v)
	}
	if c := testenv.BrowserText(t, ctx, "#changes"); !strings.Contains(c, "n2") || !strings.Contains(c, "master_down") {
		t.Errorf("recent changes lack n2's takeover (master_down): %q", c)
	}
	if loc := pageLocation(t, ctx); loc != base+"/cluster" {
		t.Errorf("after the failover the browser is at %s, want %s/cluster (no new login)", loc, base)
	}
	testenv.Screenshot(t, ctx, "cluster-after")
	testenv.BrowserDo(t, ctx, "phone width", chromedp.EmulateViewport(400, 900), chromedp.Reload(), chromedp.WaitVisible("#node-n3"))
	testenv.Screenshot(t, ctx, "cluster-after-phone")
}

// sendVIP sends one message to the VIP from the client namespace.
func (l *aaLab) sendVIP(subject string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := l.lab.Dial(ctx, l.lab.Client(), testenv.LabVIP+":25")
	if err != nil {
		l.t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	msg := fmt.Sprintf("From: a@sender.test\r\nTo: b@lab.test\r\nSubject: %s\r\n\r\nhello\r\n", subject)
	if err := c.SendMail("a@sender.test", []string{"b@lab.test"}, strings.NewReader(msg)); err != nil {
		l.t.Fatalf("send %q through the VIP: %v", subject, err)
	}
}

func pageLocation(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// waitRoles waits, without touching the page (it reloads itself), until
// the node cards show exactly the roles want.
func waitRoles(t *testing.T, ctx context.Context, when string, want map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got map[string]string
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		roles, err := chromedp.Run(c, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#nodes .card")).map(e => e.id.replace(/^node-/, "") + "=" + e.dataset.role)`))
		cancel()
		got = map[string]string{}
		if err == nil {
			for _, r := range roles {
				id, role, _ := strings.Cut(r, "=")
				got[id] = role
			}
			if maps.Equal(got, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			testenv.Screenshot(t, ctx, "cluster-roles-timeout")
			t.Fatalf("%s: the page shows roles %v after %s, want %v (last error %v)", when, got, within, want, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
