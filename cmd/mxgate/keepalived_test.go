package main

// keepalived (Debian 2.2.7, VRRPv3) in the lab: a sanity check of the lab
// with the reference implementation alone, and the keepalived half of the
// interop tests in cluster_e2e_test.go.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// keepalived is one daemon in a lab node, with private config and pid files.
type keepalived struct {
	node int
	dir  string
	proc *testenv.Process
}

// kaConfig is a keepalived.conf for one VRRPv3 instance on eth0 carrying the
// lab VIP; preempt off adds nopreempt.
func kaConfig(name string, vrid, prio int, advert time.Duration, preempt bool) string {
	np := ""
	if !preempt {
		np = "  nopreempt\n"
	}
	return fmt.Sprintf(`global_defs {
  router_id %s
  vrrp_version 3
  enable_script_security
  script_user root
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id %d
  priority %d
  advert_int %s
%s  virtual_ipaddress {
    %s/%d dev eth0
  }
}
`, name, vrid, prio, strconv.FormatFloat(advert.Seconds(), 'f', -1, 64), np, testenv.LabVIP, testenv.LabPrefix)
}

// startKeepalived runs keepalived in node i of the lab (foreground, VRRP
// only, logging to its output).
func startKeepalived(t *testing.T, lab *testenv.Lab, i, vrid, prio int, advert time.Duration, preempt bool) *keepalived {
	t.Helper()
	return startKeepalivedConf(t, lab, i, kaConfig(fmt.Sprintf("ka%d", i), vrid, prio, advert, preempt))
}

// startKeepalivedConf is startKeepalived with a whole keepalived.conf.
func startKeepalivedConf(t *testing.T, lab *testenv.Lab, i int, text string) *keepalived {
	t.Helper()
	bin := testenv.Need(t, "keepalived")[0]
	k := &keepalived{node: i, dir: t.TempDir()}
	conf := filepath.Join(k.dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k.proc = lab.Start(t, lab.Node(i), bin, "-n", "-l", "-D", "-P", "-B", "-f", conf,
		"-p", k.file("pid"), "-r", k.file("vrrp.pid"), "-c", k.file("chk.pid"), "-b", k.file("bfd.pid"))
	deadline := time.Now().Add(10 * time.Second)
	for k.vrrpPid() == 0 {
		if k.proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("keepalived in node %d did not start its VRRP process:\n%s", i, k.proc.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return k
}

func (k *keepalived) file(name string) string { return filepath.Join(k.dir, name) }

// vrrpPid is the VRRP child's pid (0 until it wrote its pid file).
func (k *keepalived) vrrpPid() int {
	b, err := os.ReadFile(k.file("vrrp.pid"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// kill9 ends keepalived without any goodbye: the parent is stopped first so
// it can neither respawn the VRRP child nor clean up, then both are killed.
// No priority-0 advert is sent and the VIP stays on the interface. It
// returns the moment the VRRP process was killed.
func (k *keepalived) kill9(t *testing.T) time.Time {
	t.Helper()
	parent := k.proc.Cmd.Process.Pid
	child := k.vrrpPid()
	syscall.Kill(parent, syscall.SIGSTOP)
	at := time.Now()
	if child > 0 {
		syscall.Kill(child, syscall.SIGKILL)
	}
	k.proc.Stop(syscall.SIGKILL, 5*time.Second)
	return at
}

// stop is a graceful stop (SIGTERM): keepalived sends priority 0 and
// removes the VIP.
func (k *keepalived) stop(t *testing.T) {
	t.Helper()
	k.proc.Stop(syscall.SIGTERM, 10*time.Second)
}

// waitLog waits until keepalived's output contains s, n times in all.
func (k *keepalived) waitLog(t *testing.T, s string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for strings.Count(k.output(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("keepalived in node %d: %q seen %d times, want %d, after %s:\n%s", k.node, s, strings.Count(k.output(), s), n, within, k.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (k *keepalived) output() string { return k.proc.Text() }

// The lab with keepalived alone: what the mxgate scenarios must also do.
// Two VRRPv3 daemons, 200 and 100, 100 ms adverts: 200 holds the VIP, the
// other does not; kill -9 of the master → the backup takes the VIP within
// Master_Down_Interval (3×100 ms + skew ≈ 0.36 s, asserted loosely); the
// old master comes back and, preempting, takes it again.
func TestKeepalivedLab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "keepalived")
	lab := testenv.NewLab(t, 2)
	const advert = 100 * time.Millisecond
	vip := testenv.LabVIP + ":2525"
	serveBanner(t, lab, 1, "ka1", 2525)
	serveBanner(t, lab, 2, "ka2", 2525)
	k1 := startKeepalived(t, lab, 1, 51, 200, advert, true)
	k2 := startKeepalived(t, lab, 2, 51, 100, advert, true)
	k1.waitLog(t, "Entering MASTER STATE", 1, 10*time.Second)
	k2.waitLog(t, "Entering BACKUP STATE", 1, 10*time.Second)
	waitHeld(t, lab, 1, true, 5*time.Second)
	waitHeld(t, lab, 2, false, time.Second)
	waitBanner(t, lab, vip, "ka1", 5*time.Second)
	if strings.Contains(k2.output(), "Entering MASTER STATE") {
		t.Fatalf("backup was master once (lab lost adverts?):\n%s", k2.output())
	}
	// The peer's adverts pass keepalived's own checks (TTL, checksum).
	for _, k := range []*keepalived{k1, k2} {
		for _, bad := range []string{"invalid TTL", "Invalid VRRPv3 checksum", "bogus VRRP packet"} {
			if strings.Contains(k.output(), bad) {
				t.Errorf("keepalived in node %d: %q:\n%s", k.node, bad, k.output())
			}
		}
	}

	t0 := k1.kill9(t)
	k2.waitLog(t, "Entering MASTER STATE", 1, 5*time.Second)
	took := time.Since(t0)
	// Master_Down_Interval = 3×0.1 s + (256-100)/256×0.1 s = 0.361 s.
	if took > 2*361*time.Millisecond+200*time.Millisecond {
		t.Errorf("backup took over after %s, want about Master_Down_Interval 361ms", took)
	}
	t.Logf("keepalived takeover after kill -9: %s", took.Round(time.Millisecond))
	waitHeld(t, lab, 2, true, 2*time.Second)
	// The client follows the VIP (gratuitous ARP) at once.
	waitBanner(t, lab, vip, "ka2", 2*time.Second)
	// kill -9 leaves the VIP on the dead master's interface.
	if held, _ := lab.HasAddr(1, testenv.LabVIP); !held {
		t.Error("the VIP vanished from the killed master (kill -9 should leave it)")
	}

	k1 = startKeepalived(t, lab, 1, 51, 200, advert, true)
	k1.waitLog(t, "Entering MASTER STATE", 1, 10*time.Second)
	k2.waitLog(t, "Entering BACKUP STATE", 2, 5*time.Second)
	waitHeld(t, lab, 2, false, 2*time.Second)
	waitHeld(t, lab, 1, true, 2*time.Second)
	waitBanner(t, lab, vip, "ka1", 2*time.Second)
}

// Interop with keepalived (VRRPv3, same VRID and VIP, 200 ms adverts), both
// ways:
//   - keepalived master (200), mxgate backup (100): mxgate accepts its
//     adverts (nothing dropped, master/priority/interval learned), holds no
//     VIP; keepalived killed → mxgate takes over and answers on the VIP;
//   - mxgate master (200), keepalived backup (100): keepalived accepts
//     mxgate's adverts (no TTL or checksum complaints, never master);
//     mxgate killed → keepalived takes over.
//
// TestKeepalivedInteropIPv6 runs the same over IPv6.
func TestKeepalivedInterop(t *testing.T) {
	keepalivedInterop(t, interopFamily{
		newLab: func(t *testing.T) *testenv.Lab { return testenv.NewLab(t, 2) },
		vip:    testenv.LabVIP,
		ka: func(vrid, prio int, advert time.Duration) string {
			return kaConfig("ka1", vrid, prio, advert, true)
		},
		serve:  serveBanner,
		source: func(t *testing.T, lab *testenv.Lab, i int) string { return lab.NodeAddr(i) },
	})
}

// interopFamily is what differs between keepalivedInterop over IPv4 and
// over IPv6.
type interopFamily struct {
	newLab func(t *testing.T) *testenv.Lab
	vip    string // the VIP's address
	v6     bool   // nodeConf.v6
	ka     func(vrid, prio int, advert time.Duration) string
	serve  func(t *testing.T, lab *testenv.Lab, i int, name string, port int)
	source func(t *testing.T, lab *testenv.Lab, i int) string // node i's VRRP source as status shows it
}

func keepalivedInterop(t *testing.T, fam interopFamily) {
	testenv.NeedRoot(t)
	testenv.Need(t, "keepalived")
	const advert = 200 * time.Millisecond
	vip := net.JoinHostPort(fam.vip, "25")
	checkKA := func(t *testing.T, k *keepalived) {
		t.Helper()
		for _, bad := range []string{"invalid TTL", "Invalid VRRPv3 checksum", "bogus VRRP packet", "wrong", "ip address associated with VRID", "invalid ip number count"} {
			if strings.Contains(k.output(), bad) {
				t.Errorf("keepalived complains %q:\n%s", bad, k.output())
			}
		}
	}
	held := func(t *testing.T, lab *testenv.Lab, i int) bool {
		t.Helper()
		h, err := lab.HasAddr(i, fam.vip)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("keepalived master", func(t *testing.T) {
		lab := fam.newLab(t)
		fam.serve(t, lab, 1, "ka1", 25)
		k := startKeepalivedConf(t, lab, 1, fam.ka(51, 200, advert))
		k.waitLog(t, "Entering MASTER STATE", 1, 5*time.Second)
		n2 := startNode(t, lab, 2, nodeConf{prio: 100, advert: advert, preempt: true, v6: fam.v6})
		st := n2.waitState(t, "backup", 2*time.Second)
		waitBanner(t, lab, vip, "ka1", 5*time.Second)
		time.Sleep(3 * advert)
		st = n2.status(t)
		if src := fam.source(t, lab, 1); st.MasterAddr != src || st.MasterPriority != 200 || st.MasterInterval != "200ms" || st.AdvertsRecv == 0 || st.VIPHeld {
			t.Errorf("mxgate under keepalived: %+v, want backup of %s/200 at 200ms, adverts received, no VIP", st, src)
		}
		for reason, c := range st.Dropped {
			if c != 0 {
				t.Errorf("mxgate dropped %d of keepalived's adverts as %q", c, reason)
			}
		}
		if tr := n2.transitions(); len(tr) != 1 || tr[0].to != "backup" {
			t.Errorf("mxgate transitions %+v, want only the start as backup", tr)
		}

		t0 := k.kill9(t)
		waitBanner(t, lab, vip, "n2.lab.test", 5*time.Second)
		took := time.Since(t0)
		mdi := masterDown(advert, 100)
		t.Logf("keepalived killed: mxgate answered on the VIP after %s (Master_Down_Interval %s)", took.Round(time.Millisecond), mdi)
		if took > 2*mdi+250*time.Millisecond { // loose: the VM stalls now and then
			t.Errorf("mxgate took over after %s, want about %s (< 2×)", took, mdi)
		}
		n2.waitState(t, "master", time.Second)
	})

	t.Run("mxgate master", func(t *testing.T) {
		lab := fam.newLab(t)
		fam.serve(t, lab, 1, "ka1", 25)
		n2 := startNode(t, lab, 2, nodeConf{prio: 200, advert: advert, preempt: true, v6: fam.v6})
		n2.waitState(t, "master", 5*time.Second)
		k := startKeepalivedConf(t, lab, 1, fam.ka(51, 100, advert))
		k.waitLog(t, "Entering BACKUP STATE", 1, 5*time.Second)
		waitBanner(t, lab, vip, "n2.lab.test", 5*time.Second)
		time.Sleep(2 * masterDown(advert, 100)) // keepalived would be master by now if it dropped the adverts
		if strings.Contains(k.output(), "Entering MASTER STATE") {
			t.Fatalf("keepalived became master beside mxgate:\n%s", k.output())
		}
		checkKA(t, k)
		if st := n2.status(t); st.State != "master" || st.Transitions != 2 {
			t.Errorf("mxgate beside a keepalived backup: %+v, want master with 2 transitions", st)
		}
		if held(t, lab, 1) {
			t.Error("the keepalived backup holds the VIP")
		}

		t0 := n2.kill9(t)
		k.waitLog(t, "Entering MASTER STATE", 1, 5*time.Second)
		waitBanner(t, lab, vip, "ka1", 5*time.Second)
		took := time.Since(t0)
		mdi := masterDown(advert, 100)
		t.Logf("mxgate killed: keepalived answered on the VIP after %s (Master_Down_Interval %s)", took.Round(time.Millisecond), mdi)
		if took > 2*mdi+250*time.Millisecond { // loose: the VM stalls now and then
			t.Errorf("keepalived took over after %s, want about %s (< 2×)", took, mdi)
		}
	})
}
