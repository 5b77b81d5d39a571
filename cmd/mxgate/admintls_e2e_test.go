package main

// The admin API over TLS, /metrics behind the token and mxgate_build_info
// on the real binary.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// withAdminTLS appends admin.tls (and the other admin keys given) to the
// node file at path, whose last section is admin:, and returns the line
// the key is written on.
func withAdminTLS(t *testing.T, path, cert, key string, more ...string) (keyLine int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	add := "  tls:\n    cert: " + cert + "\n    key: " + key + "\n"
	for _, m := range more {
		add += "  " + m + "\n"
	}
	// The key is the second line added.
	keyLine = strings.Count(string(data), "\n") + 3
	if err := os.WriteFile(path, append(data, add...), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyLine
}

// serve --check refuses a certificate and key that are not a pair, naming
// admin.tls.key and its line, and accepts a good pair.
func TestServeCheckAdminTLS(t *testing.T) {
	g := newGateway(t)
	dir := t.TempDir()
	cert, key, _ := testenv.CertFiles(t, dir, "127.0.0.1")
	_, otherKey, _ := testenv.CertFiles(t, dir, "127.0.0.1")
	good := g.writeConfig(t, "127.0.0.1:1", nil)
	withAdminTLS(t, good, cert, key)
	bad := g.writeConfig(t, "127.0.0.1:1", nil)
	line := withAdminTLS(t, bad, cert, otherKey)
	for _, tt := range []struct {
		name     string
		path     string
		wantCode int
		want     string
	}{
		{"good pair", good, 0, good + ": configuration ok"},
		{"key of another certificate", bad, 1, fmt.Sprintf("admin.tls.key: %s is not the private key of %s: tls: private key does not match public key (line %d)", otherKey, cert, line)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testenv.Start(t, mxgateBin, "serve", "--check", "-c", tt.path)
			if code := exitCode(t, p, 30*time.Second, "serve --check"); code != tt.wantCode {
				t.Errorf("exit code %d, want %d:\n%s", code, tt.wantCode, p.Text())
			}
			if !strings.Contains(p.Text(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, p.Text())
			}
		})
	}
}

// A binary built with a version serves its admin API over HTTPS only,
// /metrics only with the token (admin.metrics_auth), /healthz to anyone,
// and mxgate_build_info names the version and commit it was built with.
func TestAdminTLSServe(t *testing.T) {
	bin := buildVersioned(t, "9.8.7-tls", "feed123")
	g := newGateway(t)
	sink := testenv.StartSink(t)
	cert, key, pool := testenv.CertFiles(t, t.TempDir(), "127.0.0.1")
	path := g.writeConfig(t, sink.Addr, nil)
	withAdminTLS(t, path, cert, key, "token: e2e-token", "metrics_auth: true")
	g.Proc = testenv.Start(t, bin, "serve", "-c", path)
	testenv.WaitPort(t, g.Admin, 20*time.Second)

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "https://" + g.Admin
	for _, tt := range []struct {
		name, url, token string
		code             int
		want             string
	}{
		{"healthz open", base + "/healthz", "", 200, "ok"},
		{"metrics need the token", base + "/metrics", "", 401, "token"},
		{"metrics with the token", base + "/metrics", "e2e-token", 200, `mxgate_build_info{commit="feed123",goversion="` + goVersion(t) + `",version="9.8.7-tls"} 1`},
		{"plain http refused", "http://" + g.Admin + "/healthz", "", 400, "HTTPS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(hc, tt.url, tt.token)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET %s: %d %.300q; want %d with %q", tt.url, code, body, tt.code, tt.want)
			}
		})
	}
	if !strings.Contains(g.Proc.Text(), "node started") || strings.Contains(g.Proc.Text(), "plain HTTP") {
		t.Errorf("start log (no plain-HTTP warning expected on loopback with TLS):\n%s", g.Proc.Text())
	}
}

// buildVersioned builds the binary as make build does, with this version
// and commit, and returns its path.
func buildVersioned(t *testing.T, version, commit string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mxgate")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := testenv.Run(ctx, "go", "build", "-ldflags", "-X main.version="+version+" -X main.commit="+commit, "-o", bin, "."); err != nil {
		t.Fatalf("build with -ldflags: %v\n%s", err, out)
	}
	return bin
}

// goVersion is the Go version go build stamps into a binary.
func goVersion(t *testing.T) string {
	t.Helper()
	v, _ := buildVersion()
	return v.GoVersion
}
