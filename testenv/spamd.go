package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Spamd is SpamAssassin's spamd started for a test: offline (-L, no DNS,
// no Bayes) on the rules the Debian package ships, with a private site
// configuration in t.TempDir(), on a free loopback port and a unix
// socket, stopped by PID at cleanup.
type Spamd struct {
	Addr    string        // 127.0.0.1:port
	Socket  string        // unix socket path; "" when the temporary path is too long for one
	Started time.Duration // from exec until PING was answered
	Dir     string        // its site configuration (etc/), home and pid file

	t    testing.TB
	proc *Process
}

// spamdLocalCF keeps spamd from looking anything up and from learning, so
// that a message's score depends on its text alone.
const spamdLocalCF = `dns_available no
skip_rbl_checks 1
use_bayes 0
bayes_auto_learn 0
required_score 5.0
`

// spamdChildren bounds spamd's memory (~110 MB per child) and CPU on a
// shared test machine.
const spamdChildren = 2

// StartSpamd runs spamd and waits until it answers PING. localCF are more
// lines for its local.cf (e.g. "required_score 3.0", a test rule).
func StartSpamd(t testing.TB, localCF ...string) *Spamd {
	t.Helper()
	bin := Need(t, "spamd")[0]
	if m, _ := filepath.Glob("/usr/share/spamassassin/*.cf"); len(m) == 0 {
		Missing(t, "no SpamAssassin rules in /usr/share/spamassassin (install the Debian packages spamassassin and spamd)")
	}
	dir := t.TempDir()
	// spamd reads its configuration as the user it runs as (nobody under
	// root): the test's temporary directories (0700) must let it in.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(dir, "etc")
	home := filepath.Join(dir, "home")
	for _, d := range []string{etc, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The packaged plugin loaders (*.pre) are what the rules need; the
	// packaged local.cf is not read.
	pres, _ := filepath.Glob("/etc/spamassassin/*.pre")
	for _, p := range pres {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cf := spamdLocalCF + strings.Join(localCF, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(etc, "local.cf"), []byte(cf), 0o644); err != nil {
		t.Fatal(err)
	}

	s := &Spamd{Addr: FreeAddr(t), Dir: dir, t: t}
	n := strconv.Itoa(spamdChildren)
	args := []string{
		"--listen=" + s.Addr, "--allowed-ips=127.0.0.1",
		"--siteconfigpath=" + etc, "-L", "-x", "-H", home,
		"--pidfile=" + filepath.Join(dir, "spamd.pid"), "--syslog=stderr",
		"--max-children=" + n, "--min-children=1", "--min-spare=1", "--max-spare=" + n,
	}
	if sock := filepath.Join(dir, "spamd.sock"); len(sock) < 100 {
		s.Socket = sock
		args = append(args, "--listen="+sock, "--socketmode=0600")
	}
	if os.Geteuid() == 0 {
		// As root spamd would take each request's User header for whom to
		// become; its children run as nobody instead.
		args = append(args, "-u", "nobody")
	}
	began := time.Now()
	s.proc = Start(t, bin, args...)
	// Runs before Start's own cleanup: the children go with the parent.
	t.Cleanup(s.stop)
	for {
		err := spamdPing(s.Addr)
		if err == nil {
			break
		}
		if s.proc.Exited() {
			t.Fatalf("spamd on %s exited at start:\n%s", s.Addr, s.proc.Text())
		}
		if time.Since(began) > 120*time.Second {
			t.Fatalf("spamd on %s not answering PING after %s: %v\n%s", s.Addr, time.Since(began), err, s.proc.Text())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Started = time.Since(began)
	if b, err := os.ReadFile(filepath.Join(dir, "spamd.pid")); err != nil ||
		strings.TrimSpace(string(b)) != strconv.Itoa(s.proc.Cmd.Process.Pid) {
		t.Fatalf("spamd's pid file: %q (%v), want %d", b, err, s.proc.Cmd.Process.Pid)
	}
	return s
}

// Kill ends spamd and its children at once (SIGKILL to its process group,
// which it leads) and waits until they are gone, so that nothing listens
// on its address any more. Killing the parent alone would leave the
// children accepting on the inherited socket.
func (s *Spamd) Kill() {
	s.t.Helper()
	s.signalGroup(syscall.SIGKILL)
	if !s.proc.Wait(10 * time.Second) {
		s.t.Fatalf("spamd (pid %d) still running after SIGKILL", s.proc.Cmd.Process.Pid)
	}
	s.waitGroupGone()
}

// Process is the spamd parent process.
func (s *Spamd) Process() *Process { return s.proc }

// stop asks spamd to end (it stops its children on SIGTERM), kills the
// group if it does not, and sweeps children that outlived the parent.
func (s *Spamd) stop() {
	if !s.proc.Exited() {
		s.proc.Cmd.Process.Signal(syscall.SIGTERM)
		if !s.proc.Wait(10 * time.Second) {
			s.signalGroup(syscall.SIGKILL)
			s.proc.Wait(10 * time.Second)
		}
	}
	s.waitGroupGone()
}

func (s *Spamd) signalGroup(sig syscall.Signal) {
	// Start made spamd the leader of its own process group: the group's
	// id is its PID, and the children it forks stay in it.
	syscall.Kill(-s.proc.Cmd.Process.Pid, sig)
}

// waitGroupGone kills what is left of spamd's process group and waits
// until it is empty.
func (s *Spamd) waitGroupGone() {
	pgid := s.proc.Cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Errorf("spamd's children (process group %d) still running: %v", pgid, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spamdPing sends PING in the SPAMC protocol and wants PONG back.
func spamdPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING SPAMC/1.5\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasSuffix(strings.TrimSpace(line), " 0 PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
