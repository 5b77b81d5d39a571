package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

const adminToken = "admin-test-token"

// httpsAdmin talks to a node's admin API over HTTPS, trusting pool.
type httpsAdmin struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newHTTPSAdmin(t *testing.T, addr string, pool *x509.CertPool) *httpsAdmin {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &httpsAdmin{t: t, base: "https://" + addr, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request with the token (or none) and returns the status,
// the body and the TLS version of the connection.
func (a *httpsAdmin) do(method, path, token string) (int, string, uint16) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS.Version
}

// metric is the value of the series written exactly so (name{labels}) on
// the node's /metrics; -1 when it is missing.
func (a *httpsAdmin) metric(series string) float64 {
	a.t.Helper()
	code, body, _ := a.do("GET", "/metrics", adminToken)
	if code != 200 {
		a.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return metricIn(body, series)
}

func metricIn(body, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestAdminTLSAndMetrics: a node with admin.tls serves its admin API over
// HTTPS only (TLS 1.2 at least), /metrics needs the token with
// admin.metrics_auth while /healthz stays open, SIGHUP serves a renewed
// certificate, and each of the node's own series moves when its thing
// happens.
func TestAdminTLSAndMetrics(t *testing.T) {
	ctx := context.Background()
	sink := testenv.StartSink(t)
	dir := t.TempDir()
	cert, key, pool := testenv.CertFiles(t, dir, "127.0.0.1")
	cfg := nodeConfig(t, sink.Addr, "")
	cfg.Admin.Token, cfg.Admin.MetricsAuth = adminToken, true
	cfg.Admin.TLS = config.AdminTLS{Cert: cert, Key: key}
	// One worker, each scan held a while: a second message waits in the
	// queue long enough to be seen there.
	cfg.Scanner.Workers, cfg.Scanner.SimulatedDelay.Duration = 1, 700*time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Build(ctx, cfg, testLogger(t), WithVersion(Version{Version: "v9.8.7", Commit: "c0ffee", GoVersion: "go1.26.0"}))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer n.Stop(ctx)
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := n.AdminAddr().String()
	a := newHTTPSAdmin(t, addr, pool)

	t.Run("https only", func(t *testing.T) {
		code, body, version := a.do("GET", "/healthz", "")
		if code != 200 || body != "ok\n" || version < tls.VersionTLS12 {
			t.Errorf("GET /healthz over HTTPS without a token: %d %q TLS %x", code, body, version)
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 || strings.Contains(string(b), "ok") {
				t.Errorf("plain HTTP served: %d %q", resp.StatusCode, b)
			}
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Error("a TLS 1.1 handshake succeeded")
		}
		if _, err := http.Get("https://" + addr + "/healthz"); err == nil {
			t.Error("a client that does not trust the certificate got through")
		}
	})

	t.Run("metrics auth", func(t *testing.T) {
		for _, tt := range []struct {
			token string
			want  int
		}{{"", 401}, {"wrong", 401}, {adminToken, 200}} {
			code, body, _ := a.do("GET", "/metrics", tt.token)
			if code != tt.want || (code == 401) == strings.Contains(body, "mxgate_build_info") {
				t.Errorf("GET /metrics with token %q: %d, want %d (%.100q)", tt.token, code, tt.want, body)
			}
		}
	})

	t.Run("build info", func(t *testing.T) {
		if v := a.metric(`mxgate_build_info{commit="c0ffee",goversion="go1.26.0",version="v9.8.7"}`); v != 1 {
			t.Errorf("mxgate_build_info = %v, want 1 with the version given", v)
		}
	})

	smtpAddr := n.SMTPAddrs()[0].String()
	t.Run("messages", func(t *testing.T) {
		const clean, spam = `mxgate_smtp_messages_total{action="deliver",verdict="clean"}`, `mxgate_smtp_messages_total{action="quarantine",verdict="spam"}`
		if v := a.metric("mxgate_quarantine_items"); v != 0 {
			t.Errorf("mxgate_quarantine_items before any mail = %v, want 0", v)
		}
		send(t, smtpAddr, "clean", "hello")
		if c, s, b := a.metric(clean), a.metric(spam), a.metric("mxgate_smtp_message_bytes_count"); c != 1 || s != -1 || b != 1 {
			t.Errorf("after a clean message: clean %v, spam %v, sizes %v; want 1, none, 1", c, s, b)
		}
		r := send(t, smtpAddr, "spam", gtube)
		_, qid, _ := strings.Cut(r, "queued as ")
		if c, s, b := a.metric(clean), a.metric(spam), a.metric("mxgate_smtp_message_bytes_count"); c != 1 || s != 1 || b != 2 {
			t.Errorf("after a GTUBE message: clean %v, spam %v, sizes %v; want 1, 1, 2", c, s, b)
		}
		if v := a.metric("mxgate_quarantine_items"); v != 1 {
			t.Errorf("mxgate_quarantine_items after a quarantined message = %v, want 1", v)
		}
		const delivered = `mxgate_quarantine_releases_total{outcome="delivered"}`
		if v := a.metric(delivered); v != 0 {
			t.Errorf("releases before any = %v, want 0", v)
		}
		if code, body, _ := a.do("POST", "/api/v1/quarantine/"+qid+"/release", adminToken); code != 200 {
			t.Fatalf("release %s over HTTPS: %d %s", qid, code, body)
		}
		if v := a.metric(delivered); v != 1 {
			t.Errorf("releases after one = %v, want 1", v)
		}
		if code, body, _ := a.do("DELETE", "/api/v1/quarantine/"+qid, adminToken); code != 200 && code != 204 {
			t.Fatalf("delete %s: %d %s", qid, code, body)
		}
		if v := a.metric("mxgate_quarantine_items"); v != 0 {
			t.Errorf("mxgate_quarantine_items after the delete = %v, want 0", v)
		}
		if v, gone := a.metric("mxgate_degraded"), a.metric("mxgate_store_degraded"); v != 0 || gone != -1 {
			t.Errorf("mxgate_degraded %v (want 0), mxgate_store_degraded %v (want none: one gauge)", v, gone)
		}
	})

	t.Run("scanner queue", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { send(t, smtpAddr, fmt.Sprint("queued ", i), "hello") })
		}
		seen := false
		for deadline := time.Now().Add(10 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			seen = a.metric("mxgate_scanner_queue_depth") == 1 && a.metric("mxgate_scanner_busy") == 1
		}
		wg.Wait()
		if !seen {
			t.Error("mxgate_scanner_queue_depth never 1 while two messages shared one worker")
		}
		if v := a.metric("mxgate_scanner_queue_depth"); v != 0 {
			t.Errorf("mxgate_scanner_queue_depth after both = %v, want 0", v)
		}
	})

	t.Run("sighup renews the certificate", func(t *testing.T) {
		// New files in place of the old ones, as a renewal writes them.
		newCert, newKey, newPool := testenv.CertFiles(t, dir, "127.0.0.1")
		for _, mv := range [][2]string{{newCert, cert}, {newKey, key}} {
			if err := os.Rename(mv[0], mv[1]); err != nil {
				t.Fatal(err)
			}
		}
		if restart := n.Reload(ctx, cfg); len(restart) != 0 {
			t.Errorf("Reload with renewed certificate files wants a restart for %v", restart)
		}
		renewed := newHTTPSAdmin(t, addr, newPool)
		if code, _, _ := renewed.do("GET", "/healthz", ""); code != 200 {
			t.Errorf("the renewed certificate: %d", code)
		}
		if _, err := a.hc.Get(a.base + "/healthz"); err == nil {
			t.Error("the old certificate is still served after SIGHUP")
		}

		// A pair that does not load leaves the served one in place.
		_, otherKey, _ := testenv.CertFiles(t, dir, "127.0.0.1")
		bad := cfg
		bad.Admin.TLS.Key = otherKey
		if restart := n.Reload(ctx, bad); len(restart) != 0 {
			t.Errorf("Reload with a bad pair wants a restart for %v", restart)
		}
		if code, _, _ := renewed.do("GET", "/healthz", ""); code != 200 {
			t.Errorf("after a bad pair, the served certificate: %d", code)
		}

		// Turning TLS off takes a restart, and says so.
		plain := cfg
		plain.Admin.TLS = config.AdminTLS{}
		if restart := n.Reload(ctx, plain); strings.Join(restart, ",") != "admin.tls.cert,admin.tls.key" {
			t.Errorf("Reload without admin.tls: restart %v, want admin.tls.cert and admin.tls.key", restart)
		}
	})
}

// SIGHUP renews the STARTTLS certificate too (smtp.tls), without a restart.
func TestSMTPCertReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cert, key, pool := testenv.CertFiles(t, dir, "127.0.0.1")
	cfg := nodeConfig(t, "127.0.0.1:1", "")
	cfg.SMTP.TLS = config.TLS{Cert: cert, Key: key}
	n, err := Build(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(ctx)
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := n.SMTPAddrs()[0].String()
	starttls := func(pool *x509.CertPool) error {
		c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer c.Close()
		// The handshake runs with the first command after STARTTLS.
		return c.Noop()
	}
	if err := starttls(pool); err != nil {
		t.Fatalf("STARTTLS with the first certificate: %v", err)
	}
	// A renewal to new file names: the paths are live as well.
	newCert, newKey, newPool := testenv.CertFiles(t, dir, "127.0.0.1")
	renewed := cfg
	renewed.SMTP.TLS.Cert, renewed.SMTP.TLS.Key = newCert, newKey
	if restart := n.Reload(ctx, renewed); len(restart) != 0 {
		t.Errorf("Reload to new certificate files wants a restart for %v", restart)
	}
	if err := starttls(newPool); err != nil {
		t.Errorf("STARTTLS after SIGHUP with the new certificate: %v", err)
	}
	if err := starttls(pool); err == nil {
		t.Error("the old certificate is still served after SIGHUP")
	}
}
