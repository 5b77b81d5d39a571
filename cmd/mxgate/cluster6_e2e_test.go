package main

// VRRP over IPv6 (RFC 5798 §5.1.2) end to end: mxgate nodes and keepalived
// in a lab with IPv6 on the segment (testenv.NewLabIPv6), the VIP
// fd00:198:18::100/64, the client probing [VIP]:25.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

var vip6Listen = net.JoinHostPort(testenv.LabVIP6, "25")

// waitHeld6 waits until node i holds (or does not hold) the IPv6 VIP.
func waitHeld6(t *testing.T, lab *testenv.Lab, i int, want bool, within time.Duration) {
	t.Helper()
	waitHeldAddr(t, lab, i, testenv.LabVIP6, want, within)
}

// clientNeighMAC is the link-layer address the client's neighbour cache
// has for the IPv6 VIP ("" when there is no entry or it has none).
func clientNeighMAC(t *testing.T, lab *testenv.Lab) (mac, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := lab.Exec(ctx, lab.Client(), "ip", "-6", "neigh", "show", testenv.LabVIP6, "dev", "eth0")
	if err != nil {
		t.Fatalf("ip -6 neigh in the client: %v: %s", err, out)
	}
	// "fd00:198:18::100 lladdr 02:6d:6c:00:00:01 REACHABLE"
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			mac = f[i+1]
		}
	}
	if len(f) > 0 {
		state = f[len(f)-1]
	}
	return mac, state
}

// serveBanner6 is serveBanner on [::]:port (keepalived-only nodes).
func serveBanner6(t *testing.T, lab *testenv.Lab, i int, name string, port int) {
	t.Helper()
	serveBannerOn(t, lab, i, name, "tcp6", net.JoinHostPort("::", strconv.Itoa(port)))
}

// Three nodes 200/150/100 with an IPv6 VIP, 200 ms adverts. The 200 is
// master: it holds the VIP, its adverts come from its link-local address
// (the others name it as master and drop nothing: hop limit 255 and the
// IPv6 pseudo-header checksum pass), and the client gets its banner on
// [VIP]:25. kill -9 of the master leaves its VIP behind (its kernel still
// answers for it); the 150 takes the VIP, and its unsolicited neighbour
// advertisements move the client's cache entry to its MAC with no traffic
// from the client: without them the entry would keep the dead master's
// MAC, and probes would be answered by the dead master's kernel. The
// client then gets the 150's banner; the 100 stays backup.
func TestClusterIPv6Failover(t *testing.T) {
	testenv.NeedRoot(t)
	lab := testenv.NewLabIPv6(t, 3)
	const advert = 200 * time.Millisecond
	n1 := startNode(t, lab, 1, nodeConf{prio: 200, advert: advert, preempt: true, v6: true})
	n2 := startNode(t, lab, 2, nodeConf{prio: 150, advert: advert, preempt: true, v6: true})
	n3 := startNode(t, lab, 3, nodeConf{prio: 100, advert: advert, preempt: true, v6: true})
	n1.waitState(t, "master", 5*time.Second)
	n2.waitState(t, "backup", 5*time.Second)
	n3.waitState(t, "backup", 5*time.Second)
	waitHeld6(t, lab, 1, true, 2*time.Second)
	waitHeld6(t, lab, 2, false, time.Second)
	waitHeld6(t, lab, 3, false, time.Second)

	ll1, err := lab.LinkLocal(lab.Node(1))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * advert)
	if st := n1.status(t); st.Source != ll1.String() || !st.VIPHeld {
		t.Errorf("master status %+v, want source %s (link-local) and the VIP", st, ll1)
	}
	for _, n := range []*mxNode{n2, n3} {
		st := n.status(t)
		if st.MasterAddr != ll1.String() || st.MasterPriority != 200 || st.AdvertsRecv == 0 || st.VIPHeld {
			t.Errorf("node %d: %+v, want backup of %s/200 with adverts received and no VIP", n.i, st, ll1)
		}
		for reason, c := range st.Dropped {
			if c != 0 && reason != "vrid" {
				t.Errorf("node %d dropped %d IPv6 adverts as %q", n.i, c, reason)
			}
		}
	}

	waitBanner(t, lab, vip6Listen, "n1.lab.test", 5*time.Second)
	if mac, state := clientNeighMAC(t, lab); mac != lab.NodeMAC(1).String() {
		t.Fatalf("client's neighbour entry for the VIP: %q %s, want node 1's %s", mac, state, lab.NodeMAC(1))
	}

	n1.kill9(t)
	waitHeld6(t, lab, 2, true, 5*time.Second)
	// What the unsolicited NA is for: the cache follows the VIP on its own.
	moved := time.Now()
	for {
		mac, state := clientNeighMAC(t, lab)
		if mac == lab.NodeMAC(2).String() {
			t.Logf("client's neighbour entry moved to node 2 (%s) %s after node 2 held the VIP", state, time.Since(moved).Round(time.Millisecond))
			break
		}
		if time.Since(moved) > 2*time.Second {
			t.Fatalf("client's neighbour entry for the VIP still %q %s 2s after node 2 took it: no unsolicited NA?\n%s", mac, state, n2.proc.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if held, _ := lab.HasAddr(1, testenv.LabVIP6); !held {
		t.Error("the VIP vanished from the killed master (kill -9 should leave it)")
	}
	waitBanner(t, lab, vip6Listen, "n2.lab.test", 3*time.Second)
	if st := n3.status(t); st.State != "backup" || st.VIPHeld {
		t.Errorf("node 3 after the failover: %+v, want backup without the VIP", st)
	}
}

// kaConfig6 is a keepalived.conf for one IPv6 VRRPv3 instance on eth0
// carrying the lab's IPv6 VIP.
func kaConfig6(name string, vrid, prio int, advert time.Duration) string {
	return fmt.Sprintf(`global_defs {
  router_id %s
  vrrp_version 3
  enable_script_security
  script_user root
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  native_ipv6
  virtual_router_id %d
  priority %d
  advert_int %s
  virtual_ipaddress {
    %s/%d dev eth0
  }
}
`, name, vrid, prio, strconv.FormatFloat(advert.Seconds(), 'f', -1, 64), testenv.LabVIP6, testenv.LabPrefix6)
}

// Interop over IPv6 with keepalived (native_ipv6, VRRPv3, same VRID and
// VIP), both ways, as TestKeepalivedInterop for IPv4: each accepts the
// other's adverts (link-local source, hop limit 255, the IPv6
// pseudo-header checksum that keepalived leaves to the kernel, the same
// address list), the higher priority is master, and the other takes over
// after a kill -9.
func TestKeepalivedInteropIPv6(t *testing.T) {
	keepalivedInterop(t, interopFamily{
		newLab: func(t *testing.T) *testenv.Lab { return testenv.NewLabIPv6(t, 2) },
		vip:    testenv.LabVIP6,
		v6:     true,
		ka: func(vrid, prio int, advert time.Duration) string {
			return kaConfig6("ka1", vrid, prio, advert)
		},
		serve: serveBanner6,
		source: func(t *testing.T, lab *testenv.Lab, i int) string {
			ll, err := lab.LinkLocal(lab.Node(i))
			if err != nil {
				t.Fatal(err)
			}
			return ll.String()
		},
	})
}
