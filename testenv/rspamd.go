package testenv

import (
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Rspamd is the Debian rspamd started for a test: offline (its resolver
// points at loopback, the modules that only work with the network are
// off), with a normal worker and a controller on free loopback ports and
// its configuration and data in a private directory, stopped by PID at
// cleanup.
type Rspamd struct {
	URL           string // http://host:port of the normal worker (/checkv2, /ping)
	ControllerURL string // http://host:port of the controller (/learnspam, /learnham)
	Dir           string // configuration, data and log
	// Start is how long the start took until both workers answered and
	// the regex cache was loaded (for reports: the first start of a run
	// builds the cache, later ones load it).
	Start time.Duration

	proc *Process
}

// RspamdOptions change the private configuration; the zero value is the
// offline default.
type RspamdOptions struct {
	// Redis is the host:port of a redis-server (StartRedis) for Bayes and
	// the other Redis modules; "" = none, and then learning answers
	// success but learns nothing.
	Redis string
	// Nameserver is the host:port of the DNS server rspamd asks; "" = a
	// dead loopback port, so every lookup fails at once and nothing ever
	// leaves the host.
	Nameserver string
	// Local are more files for local.d (name → content), e.g.
	// {"spf.conf": "enabled = true;"} to turn a network module back on
	// against the test's own DNS server.
	Local map[string]string
}

// The modules that need DNS or remote servers and maps: off, otherwise
// offline mail collects *_FAIL and DNSFAIL symbols (a clean message
// scored 5.3 in the measurements) and waits for timeouts.
var rspamdNetworkModules = []string{
	"rbl", "fuzzy_check", "spf", "dkim", "dmarc", "arc", "asn", "hfilter", "multimap",
	"phishing", "whitelist", "rspamd_update", "url_redirector", "dcc", "mx_check",
}

// rspamdCacheReady is what rspamd's main process logs once the regex
// cache (hyperscan) is built or loaded; until then a second rspamd on the
// same cache directory would build it again over the first one's files.
var rspamdCacheReady = regexp.MustCompile(`\(main\).*hyperscan database of \d+ regexps has been loaded`)

const rspamdStartTimeout = 5 * time.Minute

// StartRspamd runs rspamd until the test ends and waits until its workers
// answer /ping.
//
// rspamd's first start on a machine builds a regex cache of about 90 MB
// (15–30 s on 2 cores); it is kept in a directory under os.TempDir() named
// by user and rspamd version, shared by every test and test binary of the
// run, so later starts take about a second. An flock on that directory is
// held while an rspamd starts, so that concurrent test binaries never
// build it twice at once.
func StartRspamd(t testing.TB, o RspamdOptions) *Rspamd {
	t.Helper()
	bin := Need(t, "rspamd")[0]
	if st, err := os.Stat("/etc/rspamd/common.conf"); err != nil || st.IsDir() {
		Missing(t, "/etc/rspamd/common.conf not found (install the Debian package rspamd: make deps)")
	}
	cache, err := rspamdCacheDir(bin, o.Local)
	if err != nil {
		t.Fatal(err)
	}
	// Short paths: rspamd binds unix sockets under RUNDIR.
	dir, err := os.MkdirTemp("", "mxgate-rspamd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"local.d", "db", "run", "log", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &Rspamd{Dir: dir}
	worker, controller := FreeAddr(t), FreeAddr(t)
	r.URL, r.ControllerURL = "http://"+worker, "http://"+controller
	files := rspamdConfig(dir, cache, worker, controller, o)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	unlock, err := lockDir(cache, rspamdStartTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	args := []string{"-f", "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=CONFDIR=/etc/rspamd", "--var=LOCAL_CONFDIR=" + dir,
		"--var=DBDIR=" + filepath.Join(dir, "db"), "--var=RUNDIR=" + filepath.Join(dir, "run"),
		"--var=LOGDIR=" + filepath.Join(dir, "log")}
	if os.Geteuid() == 0 {
		args = append(args, "-i") // workers keep running as root instead of dropping to _rspamd
	}
	begin := time.Now()
	r.proc = Start(t, bin, args...)
	logFile := filepath.Join(dir, "log", "rspamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rspamd log (%s):\n%s", logFile, tail(logFile, 40))
		}
	})
	for {
		if r.proc.Exited() {
			t.Fatalf("rspamd exited at start:\n%s\n%s", r.proc.Text(), tail(logFile, 40))
		}
		if time.Since(begin) > rspamdStartTimeout {
			t.Fatalf("rspamd not ready after %s:\n%s", rspamdStartTimeout, tail(logFile, 40))
		}
		if b, _ := os.ReadFile(logFile); rspamdCacheReady.Match(b) &&
			rspamdPing(r.URL) == nil && rspamdPing(r.ControllerURL) == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Start = time.Since(begin)
	return r
}

// Stop ends rspamd now (SIGTERM, then SIGKILL): a test of an engine that
// went away. Cleanup stops it anyway.
func (r *Rspamd) Stop() { r.proc.Stop(syscall.SIGTERM, 10*time.Second) }

// Process is the running rspamd main process.
func (r *Rspamd) Process() *Process { return r.proc }

// Log is rspamd's log so far.
func (r *Rspamd) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "log", "rspamd.log"))
	return string(b)
}

func rspamdConfig(dir, cache, worker, controller string, o RspamdOptions) map[string]string {
	ns := o.Nameserver
	if ns == "" {
		ns = "127.0.0.1:1"
	}
	files := map[string]string{
		// A top-level configuration of our own: the packaged rules from
		// $CONFDIR (/etc/rspamd, read only), our overrides in $LOCAL_CONFDIR.
		"rspamd.conf": fmt.Sprintf(`.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "info";
}
worker "normal" {
    bind_socket = "%s";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
    task_timeout = 8s;
}
worker "controller" {
    bind_socket = "%s";
    .include "$CONFDIR/worker-controller.inc"
    count = 1;
}
`, worker, controller),
		"local.d/options.inc": fmt.Sprintf(`dns {
  nameserver = [%q];
  timeout = 0.3s;
  retransmits = 1;
}
hs_cache_dir = "%s/";
control_socket = "$RUNDIR/rspamd.sock mode=0600";
tempdir = "%s";
# GTUBE variants that drive each action: XJS reject, YJS add header,
# ZJS rewrite subject, AJS no action.
enable_test_patterns = true;
`, ns, cache, filepath.Join(dir, "tmp")),
		// Headers in milter.add_headers on every scanned message, so that
		// the client's handling of them meets the real thing.
		"local.d/milter_headers.conf": `use = ["x-spam-status", "x-rspamd-queue-id", "x-spamd-result", "x-rspamd-action"];
`,
	}
	for _, m := range rspamdNetworkModules {
		files["local.d/"+m+".conf"] = "enabled = false;\n"
	}
	if o.Redis != "" {
		files["local.d/redis.conf"] = fmt.Sprintf("servers = %q;\n", o.Redis)
	}
	for name, content := range o.Local {
		files["local.d/"+filepath.Base(name)] = content
	}
	return files
}

// rspamdCacheDir is the regex cache shared by the tests of one user and
// rspamd version. Extra local.d files may change the set of regexps, and
// rspamd removes the files of other sets from its cache directory as
// stale, so each such configuration has a directory of its own.
func rspamdCacheDir(bin string, local map[string]string) (string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("rspamd --version: %w", err)
	}
	version := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '.' {
			return r
		}
		return -1
	}, strings.TrimSpace(string(out)))
	key := fmt.Sprintf("%d-%s", os.Getuid(), version)
	if len(local) > 0 {
		h := sha256.New()
		for _, name := range slices.Sorted(maps.Keys(local)) {
			fmt.Fprintf(h, "%s\x00%s\x00", name, local[name])
		}
		key += fmt.Sprintf("-%x", h.Sum(nil)[:6])
	}
	dir := filepath.Join(os.TempDir(), "mxgate-rspamd-cache-"+key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("rspamd cache: %w", err)
	}
	return dir, nil
}

// lockDir takes an exclusive flock on dir/.lock, waiting at most within.
func lockDir(dir string, within time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(within)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s (held by another test's rspamd start?): %w", dir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rspamdPing(url string) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url + "/ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "pong" {
		return fmt.Errorf("/ping answered %d %q", resp.StatusCode, b)
	}
	return nil
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return strings.Join(lines, "\n")
}
