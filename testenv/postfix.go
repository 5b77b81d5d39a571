package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Postfix is a private Postfix instance (own configuration, queue and data
// directories; loopback only; no DNS) relaying everything it accepts to a
// next hop. The system's Postfix configuration is neither read nor touched.
type Postfix struct {
	Addr string
	Dir  string
}

// StartPostfix runs Postfix's smtpd on a free loopback port, accepting mail
// for relayDomain from anyone and relaying it to nextHop (host:port).
// mainExtra are more main.cf lines, e.g. a check_recipient_access map.
func StartPostfix(t testing.TB, relayDomain, nextHop string, mainExtra ...string) *Postfix {
	t.Helper()
	NeedRoot(t)
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
	addr := FreeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
myhostname = downstream.test
mydomain = downstream.test
myorigin = $myhostname
mydestination =
relay_domains = %[2]s
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [%[3]s]:%[4]s
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
`, dir, relayDomain, strings.Split(nextHop, ":")[0], strings.Split(nextHop, ":")[1])
	main += strings.Join(mainExtra, "\n") + "\n"
	master := fmt.Sprintf(`%s:%s inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
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
`, host, port)
	conf := filepath.Join(dir, "conf")
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := Run(ctx, bin, "-c", conf, "check"); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	if out, err := Run(ctx, bin, "-c", conf, "start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := Run(ctx, bin, "-c", conf, "stop"); err != nil {
			t.Logf("postfix stop: %v\n%s", err, out)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "maillog")); err == nil {
				t.Logf("postfix maillog:\n%s", b)
			}
		}
		os.RemoveAll(dir)
	})
	WaitPort(t, addr, 20*time.Second)
	return &Postfix{Addr: addr, Dir: dir}
}
