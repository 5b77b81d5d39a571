package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lab"
)

// Postfix is a private Postfix instance (own configuration, queue and data
// directories; no DNS) relaying what it accepts. The system's Postfix
// configuration is neither read nor touched.
type Postfix struct {
	Addr string // the smtpd of StartPostfix; empty for a recipe's instance
	Dir  string // conf/ (main.cf, master.cf), queue/, data/, maillog
}

// StartPostfix runs Postfix's smtpd on a free loopback port, accepting mail
// for relayDomain from anyone and relaying it to nextHop (host:port).
// mainExtra are more main.cf lines, e.g. a check_recipient_access map.
func StartPostfix(t testing.TB, relayDomain, nextHop string, mainExtra ...string) *Postfix {
	t.Helper()
	addr := FreeAddr(t)
	host, port, _ := strings.Cut(nextHop, ":")
	main := fmt.Sprintf(`myhostname = downstream.test
mydomain = downstream.test
relay_domains = %s
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8
relayhost = [%s]:%s
`, relayDomain, host, port) + strings.Join(mainExtra, "\n") + "\n"
	p := startPostfix(t, nil, main, addr+" inet n - n - - smtpd\n")
	WaitPort(t, addr, 20*time.Second)
	p.Addr = addr
	return p
}

// StartPostfix runs a private Postfix instance inside namespace ns with a
// configuration of one's own, e.g. a recipe's files: main is appended to
// the instance's own main.cf (paths, logging, no DNS, quick retries;
// the last setting of a name wins, so main may override them) and master
// to the internal services of master.cf (pickup, cleanup, qmgr, smtp and
// the like), so master holds only the inet services and filters. It
// returns once `postfix start` did; wait for its ports with WaitListen.
func (l *Lab) StartPostfix(t testing.TB, ns, main, master string) *Postfix {
	t.Helper()
	return startPostfix(t, []string{"ip", "netns", "exec", ns}, main, master)
}

// startPostfix writes an instance's files and starts it, with the postfix
// command run through wrap (e.g. ip netns exec NS) when it is not empty.
func startPostfix(t testing.TB, wrap []string, main, master string) *Postfix {
	t.Helper()
	NeedRoot(t)
	if len(wrap) == 0 {
		// A lab namespace gets its own (package lab); this is the host's.
		raiseUnixDgramQueue(t)
	}
	bin := Need(t, "postfix")[0]
	dir, err := os.MkdirTemp("", "mxgate-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"conf", "queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix data dir: %v: %s", err, out)
	}
	conf := filepath.Join(dir, "conf")
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(postfixMain(dir)+main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(master+postfixInternal), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		cmd := append(append(append([]string{}, wrap...), bin, "-c", conf), args...)
		return Run(ctx, cmd[0], cmd[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := run(ctx, "check"); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	p := &Postfix{Dir: dir}
	// Registered before start, so a half-started instance is stopped too.
	t.Cleanup(func() {
		stopPostfix(t, dir)
		if t.Failed() {
			t.Logf("postfix maillog (%s):\n%s", conf, p.Log())
		}
		os.RemoveAll(dir)
	})
	if out, err := run(ctx, "start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	return p
}

// postfixMain is what makes an instance private and quick: its own
// directories and log file, no DNS, no TLS, no local delivery, retries
// within seconds.
func postfixMain(dir string) string {
	return fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
myhostname = postfix.test
mydomain = postfix.test
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
inet_protocols = ipv4
disable_dns_lookups = yes
smtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 10s
`, dir)
}

// postfixInternal are master.cf's internal services, chroot off (the
// queue directory holds no chroot tree).
const postfixInternal = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// Log is the instance's maillog so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// WaitLog waits until the maillog holds want and returns the log.
func (p *Postfix) WaitLog(t testing.TB, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		log := p.Log()
		if strings.Contains(log, want) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix's log has no %q after %s:\n%s", want, within, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopPostfix stops an instance the way `postfix stop` does, SIGTERM to
// the master, without the script: the script first runs `master -t`,
// which logs through postlogd and was seen blocked for minutes on a full
// postlog socket under load. The master is a session leader (it called
// setsid), so its process group holds it and every service it started;
// what is left after 10 s is killed. The PID is taken only while it is
// still this instance's master (it runs in the instance's queue
// directory), never another program's.
func stopPostfix(t testing.TB, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	if err != nil {
		return // never started
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	ours := func() bool {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		return err == nil && cwd == filepath.Join(dir, "queue")
	}
	if !ours() {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !ours() {
			return
		}
	}
	t.Logf("postfix master %d still running 10 s after SIGTERM: killing its process group", pid)
	syscall.Kill(-pid, syscall.SIGKILL)
}

// raiseUnixDgramQueue makes the host's net.unix.max_dgram_qlen at least
// lab.UnixDgramQueue, what systemd sets on every Debian host. Without
// systemd the kernel's 10 stays, and Postfix's postlogd deadlocks on its
// own socket when that queue fills before it starts reading (seen under
// load: every daemon of the instance blocked in unix_wait_for_peer, the
// instance silent).
func raiseUnixDgramQueue(t testing.TB) {
	const f = "/proc/sys/net/unix/max_dgram_qlen"
	b, err := os.ReadFile(f)
	if err != nil {
		return
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	want, _ := strconv.Atoi(lab.UnixDgramQueue)
	if err != nil || cur >= want {
		return
	}
	if err := os.WriteFile(f, []byte(lab.UnixDgramQueue), 0); err != nil {
		t.Logf("raise %s from %d to %d: %v", f, cur, want, err)
	}
}
