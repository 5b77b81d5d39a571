package testenv

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Clamd is a ClamAV daemon (Debian's clamav-daemon) started for a test,
// offline: on a free loopback TCP port and a unix socket, with a private
// configuration and a database the test writes (Debian ships none and
// nothing can be downloaded here). Stopped by PID at the test's cleanup.
type Clamd struct {
	TCP  string // tcp://127.0.0.1:port
	Unix string // unix:///…/clamd.sock
	Dir  string // configuration, database, log
	// Signatures of the test database, with the names clamd gives them
	// (a private database's names end in ".UNOFFICIAL").
	EICAR  ClamdSignature // the EICAR test file, as a body (.ndb) signature
	Custom ClamdSignature // a string of mxgate's own, as a body (.ndb) signature
	Hash   ClamdSignature // a whole file known by its MD5 and size (.hdb)
	// StartTime is from the start of the process to its first PONG.
	StartTime time.Duration

	proc *Process
}

// ClamdSignature is a signature of the test database: the name clamd
// reports and content it matches. A body signature matches Sample
// anywhere in a file; a hash signature only a file that is exactly Sample
// (e.g. a whole attachment).
type ClamdSignature struct {
	Name   string
	Sample []byte
}

// ClamdOptions are the settings a test may change.
type ClamdOptions struct {
	// StreamMaxLength is the largest zINSTREAM clamd takes, in bytes
	// (0 = clamd's default, 25 MiB).
	StreamMaxLength int64
	// MaxThreads is clamd's scanning threads (0 = 4).
	MaxThreads int
}

// EICAR returns the EICAR anti-virus test file. It is assembled here
// (stored rot13-encoded and split) so that no scanner flags the sources.
func EICAR() []byte {
	rot13 := func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return 'A' + (r-'A'+13)%26
		case r >= 'a' && r <= 'z':
			return 'a' + (r-'a'+13)%26
		}
		return r
	}
	return []byte(strings.Map(rot13, `K5B!C%@NC[4\CMK54(C^)7PP)7}$`+"RVPNE-FGNAQNEQ-"+"NAGVIVEHF-GRFG-SVYR!$U+U*"))
}

// eicarMD5 is the published MD5 of the EICAR file: a check that EICAR
// assembled the right bytes.
const eicarMD5 = "44d88612fea8a8f36de82e1278abb02f"

// StartClamd starts clamd and waits until it answers PING. It needs
// /usr/sbin/clamd (clamav-daemon). As root it stays root: the private
// configuration has no User line, so clamd drops no privileges and reads
// the test's directories as they are.
func StartClamd(t testing.TB, o ClamdOptions) *Clamd {
	t.Helper()
	bin := Need(t, "clamd")[0]
	if sum := md5.Sum(EICAR()); hex.EncodeToString(sum[:]) != eicarMD5 {
		t.Fatalf("EICAR assembled wrong: md5 %x", sum)
	}
	dir := t.TempDir()
	// A unix socket's path must fit in sun_path (108 bytes); a long test
	// name makes TempDir's too long.
	if len(dir) > 90 {
		d, err := os.MkdirTemp("", "clamd-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	c := &Clamd{
		Dir:    dir,
		EICAR:  ClamdSignature{Name: "Eicar-Test-Signature.UNOFFICIAL", Sample: EICAR()},
		Custom: ClamdSignature{Name: "Mxgate-Test-Custom.UNOFFICIAL", Sample: []byte("mxgate clamd test: the custom signature 7f3a9c")},
		Hash:   ClamdSignature{Name: "Mxgate-Test-Hash.UNOFFICIAL", Sample: []byte(strings.Repeat("mxgate clamd test: a file known by its MD5 and size\r\n", 20))},
	}
	db := filepath.Join(dir, "db")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{db, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ndb := ""
	for _, s := range []ClamdSignature{c.EICAR, c.Custom} {
		ndb += fmt.Sprintf("%s:0:*:%x\n", strings.TrimSuffix(s.Name, ".UNOFFICIAL"), s.Sample)
	}
	hashSum := md5.Sum(c.Hash.Sample)
	hdb := fmt.Sprintf("%x:%d:%s\n", hashSum, len(c.Hash.Sample), strings.TrimSuffix(c.Hash.Name, ".UNOFFICIAL"))
	writeClamdFile(t, filepath.Join(db, "mxgate-test.ndb"), ndb)
	writeClamdFile(t, filepath.Join(db, "mxgate-test.hdb"), hdb)

	threads := o.MaxThreads
	if threads <= 0 {
		threads = 4
	}
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	sock := filepath.Join(dir, "clamd.sock")
	c.TCP, c.Unix = "tcp://"+addr, "unix://"+sock
	conf := []string{
		"Foreground yes",
		"TCPSocket " + port,
		"TCPAddr 127.0.0.1",
		"LocalSocket " + sock,
		"LocalSocketMode 600",
		"DatabaseDirectory " + db,
		"TemporaryDirectory " + tmp,
		"PidFile " + filepath.Join(dir, "clamd.pid"),
		"LogFile " + filepath.Join(dir, "clamd.log"),
		"LogTime yes",
		// No self-check: it would reload the database under the test.
		"SelfCheck 0",
		"ScanMail yes",
		"ScanArchive yes",
		fmt.Sprintf("MaxThreads %d", threads),
		"MaxConnectionQueueLength 64",
		"ReadTimeout 30",
		"CommandReadTimeout 10",
	}
	if o.StreamMaxLength > 0 {
		conf = append(conf, fmt.Sprintf("StreamMaxLength %d", o.StreamMaxLength))
	}
	confPath := filepath.Join(dir, "clamd.conf")
	writeClamdFile(t, confPath, strings.Join(conf, "\n")+"\n")

	start := time.Now()
	c.proc = Start(t, bin, "-c", confPath)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "clamd.log")); err == nil {
				t.Logf("clamd.log:\n%s", b)
			}
		}
	})
	deadline := start.Add(60 * time.Second)
	for {
		err := clamdPing(addr)
		if err == nil {
			break
		}
		if c.proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("clamd on %s: no PONG after %s (exited: %v): %v\n%s", addr,
				time.Since(start).Round(time.Millisecond), c.proc.Exited(), err, c.proc.Output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.StartTime = time.Since(start)
	t.Logf("clamd up on %s and %s in %s", c.TCP, c.Unix, c.StartTime.Round(time.Millisecond))
	return c
}

func writeClamdFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// clamdPing is the harness's own zPING, independent of the client under
// test.
func clamdPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	if got := string(buf[:n]); got != "PONG\x00" {
		return fmt.Errorf("reply %q, want PONG", got)
	}
	return nil
}

// Kill ends clamd with SIGKILL, as a crash would: its socket file stays
// behind, so connections are refused rather than pointing nowhere.
func (c *Clamd) Kill() {
	c.proc.Stop(syscall.SIGKILL, 10*time.Second)
}

// PID is clamd's process id.
func (c *Clamd) PID() int { return c.proc.Cmd.Process.Pid }
