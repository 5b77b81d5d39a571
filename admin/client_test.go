package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/lists"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestClient(t *testing.T) {
	f := newFixture(t, nil)
	hs := httptest.NewServer(f.srv.Handler())
	defer hs.Close()
	ctx := context.Background()
	c, err := NewClient(hs.URL+"/", testToken)
	if err != nil {
		t.Fatal(err)
	}

	items, err := c.QuarantineList(ctx, QuarantineQuery{Rcpt: "alice@example.org", Since: "24h"})
	if err != nil || len(items) != 1 || items[0].ID != "Q1" {
		t.Fatalf("QuarantineList = %+v, %v", items, err)
	}
	if items, err := c.QuarantineList(ctx, QuarantineQuery{Limit: 2, Verdict: "spam"}); err != nil || len(items) != 2 {
		t.Fatalf("QuarantineList limit = %d, %v", len(items), err)
	}
	it, err := c.QuarantineGet(ctx, "Q3")
	if err != nil || it.Score != 7 || len(it.Recipients) != 2 {
		t.Fatalf("QuarantineGet = %+v, %v", it, err)
	}
	raw, err := c.QuarantineRaw(ctx, "Q3")
	if err != nil || string(raw) != string(testRaw) {
		t.Fatalf("QuarantineRaw = %q, %v", raw, err)
	}
	res, err := c.QuarantineRelease(ctx, "Q3", ReleaseOptions{})
	if err != nil || res.Reply != "250 2.0.0 Ok: queued as X1" {
		t.Fatalf("QuarantineRelease = %+v, %v", res, err)
	}
	if err := c.QuarantineDelete(ctx, "Q3"); err != nil {
		t.Fatal(err)
	}
	var ae *Error
	if _, err := c.QuarantineGet(ctx, "Q3"); !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Message, `no quarantined message with id "Q3"`) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := c.QuarantineDelete(ctx, "Q3"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("delete deleted: %v", err)
	}
	// An id with a slash stays one path segment.
	if _, err := c.QuarantineGet(ctx, "a/b"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("get a/b: %v", err)
	}

	e, err := c.ListAdd(ctx, ListRequest{Kind: lists.Block, Value: "@Spam.example", Rcpt: "@example.org", Comment: "c"})
	if err != nil || e.Value != "@spam.example" || e.Rcpt != "@example.org" {
		t.Fatalf("ListAdd = %+v, %v", e, err)
	}
	again, err := c.ListAdd(ctx, ListRequest{Kind: lists.Block, Value: "@spam.EXAMPLE", Rcpt: "@Example.org", Comment: "other"})
	if err != nil || !again.Existing || again.Comment != "c" || e.Existing {
		t.Fatalf("ListAdd of an existing entry = %+v, %v; want it unchanged, existing (first: %+v)", again, err, e)
	}
	_, err = c.ListAdd(ctx, ListRequest{Kind: "nope", Value: "@x.example"})
	if !errors.As(err, &ae) || ae.Status != 400 || err.Error() != `kind: "nope" is not block or allow (HTTP 400)` {
		t.Fatalf("ListAdd bad kind: %v", err)
	}
	all, err := c.Lists(ctx)
	if err != nil || len(all) != 1 || all[0].Comment != "c" {
		t.Fatalf("Lists = %+v, %v", all, err)
	}
	if err := c.ListRemove(ctx, lists.Block, "@spam.example", ""); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("ListRemove global: %v", err)
	}
	if err := c.ListRemove(ctx, lists.Block, "@spam.example", "@example.org"); err != nil {
		t.Fatalf("ListRemove: %v", err)
	}

	recs, err := c.Log(ctx, LogQuery{Sender: ".evil.example", Action: "reject", Since: "24h", Limit: 5})
	if err != nil || len(recs) != 1 || recs[0].ID != "L2" {
		t.Fatalf("Log = %+v, %v", recs, err)
	}
	if _, err := c.Log(ctx, LogQuery{Since: "later"}); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "since:") {
		t.Fatalf("Log bad since: %v", err)
	}

	bad, _ := NewClient(hs.URL, "wrong")
	if _, err := bad.Lists(ctx); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8025", "ftp://h/", "http://", "://x"} {
		if _, err := NewClient(u, ""); err == nil || !strings.Contains(err.Error(), "want http://host:port") {
			t.Errorf("NewClient(%q) = %v", u, err)
		}
	}

	// A port nobody listens on: take one and give it back.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ := NewClient("http://"+addr, "")
	_, err = c.Lists(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "cannot reach the admin API at http://"+addr+": ") || strings.Count(err.Error(), addr) > 2 {
		t.Fatalf("unreachable: %v", err)
	}

	// A password in the URL is never shown.
	c, _ = NewClient("http://op:s3cret@"+addr, "")
	_, err = c.Lists(context.Background())
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "op:xxxxx@"+addr) {
		t.Errorf("unreachable with a password: %v", err)
	}
	for _, u := range []string{"ftp://op:s3cret@h/", "http://op:s3cret@h:bad:port/%zz"} {
		if _, err := NewClient(u, ""); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewClient(%q) = %v", u, err)
		}
	}

	// A non-JSON error (a proxy in between) still gives a message.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream timed out", http.StatusGatewayTimeout)
	}))
	defer hs.Close()
	c, _ = NewClient(hs.URL, "")
	_, err = c.Lists(context.Background())
	if err == nil || err.Error() != "upstream timed out (HTTP 504)" {
		t.Fatalf("proxy error: %v", err)
	}
}

func TestClientClusterStatus(t *testing.T) {
	type status struct {
		State    string `json:"state"`
		Priority int    `json:"priority"`
	}
	for _, tt := range []struct {
		name    string
		cluster func() any
		want    status
		wantErr string
	}{
		{"clustered", func() any { return status{State: "master", Priority: 200} }, status{"master", 200}, ""},
		{"single node", nil, status{}, "clustering is not enabled on this node (cluster.enabled: false) (HTTP 404)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Cluster = tt.cluster })
			hs := httptest.NewServer(f.srv.Handler())
			defer hs.Close()
			c, err := NewClient(hs.URL, testToken)
			if err != nil {
				t.Fatal(err)
			}
			var got status
			err = c.ClusterStatus(context.Background(), &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ClusterStatus = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
