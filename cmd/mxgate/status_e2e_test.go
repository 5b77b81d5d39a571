package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/testenv"
)

// A real single node run with a node file holding its admin token: the
// management commands take the address and token from that file (-c
// before or after the command, or MXGATE_CONFIG), never print the token,
// take host:port, end with the exit status of each class of failure, and
// `mxgate status` shows the node where `cluster status` says to use it.
func TestCLIWithNodeFile(t *testing.T) {
	const token = "node-file-token-7f3a9c"
	sink := testenv.StartSink(t)
	g := newGateway(t)
	path := g.writeConfig(t, sink.Addr, nil)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("  token: " + token + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g.serve(t, path)
	clearAdminEnv(t)
	down := downURL(t)

	cli := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		var out, errb bytes.Buffer
		code = execute(t.Context(), args, &out, &errb)
		if strings.Contains(out.String()+errb.String(), token) {
			t.Errorf("mxgate %q printed the token:\n%s%s", args, out.String(), errb.String())
		}
		return out.String(), errb.String(), code
	}

	out, stderr, code := cli("-c", path, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("mxgate -c FILE status: status %d, %s", code, stderr)
	}
	for _, want := range []string{
		"NODE        gw1\n", "ROLE        single\n", "HEALTH      ok\n",
		"SMTP        0 connection(s) open\n", "SCANNER     0 of 2 scanning, 0 of ",
		"STORE       embedded " + g.DataDir + "/mxgate.db: ok\n", "DOWNSTREAM  " + sink.Addr + ": ok\n",
		"ENGINES     none (built-in checks only)\n", "LISTS       0 entries\n", "CONFIG      revision 1 applied\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	t.Logf("mxgate -c FILE status:\n%s", out)
	if strings.Contains(out, "CLUSTER") {
		t.Errorf("a single node shows a cluster line:\n%s", out)
	}
	if !strings.Contains(out, "VERSION     dev, commit ") {
		t.Errorf("status names no version:\n%s", out)
	}

	// -c after the command, and the JSON form.
	out, _, code = cli("status", "--json", "-c", path)
	var st node.StatusView
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json -c: %d %v\n%s", code, err, out)
	}
	if st.Node != "gw1" || st.Role != "single" || !st.Healthy || st.Store.Kind != "embedded" || !st.Store.OK ||
		st.Downstream.Address != sink.Addr || !st.Downstream.OK || st.Cluster != nil || st.ScannerWorkers != 2 || st.Started.IsZero() {
		t.Errorf("status --json: %+v", st)
	}

	// The same from MXGATE_CONFIG, and from host:port with the token.
	t.Setenv(envConfig, path)
	if _, stderr, code := cli("status"); code != 0 {
		t.Errorf("MXGATE_CONFIG: %d %s", code, stderr)
	}
	t.Setenv(envConfig, os.DevNull)
	if _, stderr, code := cli("status", "--admin", g.Admin, "--token", token); code != 0 {
		t.Errorf("--admin host:port: %d %s", code, stderr)
	}

	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-c", path, "cluster", "status"}, exitNoInput, "mxgate: not a cluster node (cluster.enabled: false): use mxgate status (HTTP 404)\n"},
		{[]string{"-c", path, "quarantine", "show", "NOPE"}, exitNoInput, "mxgate: no quarantined message with id"},
		{[]string{"-c", path, "report", "--day", "2026-13-45"}, exitUsage, "mxgate: day: want YYYY-MM-DD"},
		{[]string{"-c", path, "status", "extra"}, exitUsage, "mxgate: mxgate status takes no arguments"},
		{[]string{"-c", path, "status", "--admin", down}, exitUnavailable, "mxgate: cannot reach the admin API at " + down},
		{[]string{"status", "--admin", g.Admin}, exitNoPerm, "mxgate: missing or wrong token"},
		{[]string{"-c", path, "status", "--token", "wrong"}, exitNoPerm, "mxgate: missing or wrong token (Authorization: Bearer TOKEN) (HTTP 401); pass --token or set MXGATE_TOKEN (the token sent came from --token)\n"},
	} {
		_, stderr, code := cli(tt.args...)
		if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) {
			t.Errorf("mxgate %q: status %d, %q; want %d, %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}

	// The binary exits with the status: what a script sees.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-c", path, "status"}, 0},
		{[]string{"-c", path, "quarantine", "show", "NOPE"}, exitNoInput},
		{[]string{"status", "--admin", down}, exitUnavailable},
		{[]string{"-c", path, "status", "--token", "wrong"}, exitNoPerm},
		{[]string{"-c", path, "bogus"}, exitUsage},
	} {
		cmd := exec.CommandContext(ctx, mxgateBin, tt.args...)
		b, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || bytes.Contains(b, []byte(token)) {
			t.Errorf("%s %q: exit %d, want %d:\n%s", mxgateBin, tt.args, code, tt.code, b)
		}
	}

	// A downstream that takes no connections: the node says so, and the
	// command still succeeds (it answered).
	sink.Proc.Stop(syscall.SIGTERM, 5*time.Second)
	out, _, code = cli("-c", path, "status")
	if code != 0 || !strings.Contains(out, "DOWNSTREAM  "+sink.Addr+": DOWN: ") || !strings.Contains(out, "HEALTH      UNHEALTHY: downstream "+sink.Addr+": ") {
		t.Errorf("status with the downstream down: %d\n%s", code, out)
	}
}

// A node serving its admin API over TLS with a self-signed certificate for
// a name the commands do not use: -c FILE takes https, the token and the
// certificate (trusted as the node's own) from the node file; without the
// file a plain host:port gets EX_PROTOCOL and what to do.
func TestCLIWithTLSNodeFile(t *testing.T) {
	const token = "tls-node-token-51c0"
	sink := testenv.StartSink(t)
	g := newGateway(t)
	cert, key, _ := testenv.CertFiles(t, t.TempDir(), "gw1.mxgate.test")
	path := g.writeConfig(t, sink.Addr, nil)
	withAdminTLS(t, path, cert, key, "token: "+token)
	g.serve(t, path)
	clearAdminEnv(t)

	for _, tt := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-c", path, "status"}, 0, "ROLE        single\n", ""},
		{[]string{"status", "--admin", g.Admin, "--token", token, "--cacert", cert}, 0, "ROLE        single\n", ""},
		{[]string{"status", "--admin", g.Admin, "--token", token}, exitProtocol, "", "mxgate: Client sent an HTTP request to an HTTPS server. (HTTP 400); the admin API is served over TLS: use an https:// URL, or --cacert\n"},
		{[]string{"status", "--admin", "https://" + g.Admin, "--token", token}, exitProtocol, "", "mxgate: cannot reach the admin API at https://" + g.Admin + ": tls: failed to verify certificate: x509: "},
	} {
		var out, errb bytes.Buffer
		code := execute(t.Context(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.HasPrefix(errb.String(), tt.stderr) || (tt.stderr == "") != (errb.Len() == 0) {
			t.Errorf("mxgate %q: status %d, stderr %q; want %d, %q\n%s", tt.args, code, errb.String(), tt.code, tt.stderr, out.String())
		}
		if strings.Contains(out.String()+errb.String(), token) {
			t.Errorf("mxgate %q printed the token", tt.args)
		}
	}
}
