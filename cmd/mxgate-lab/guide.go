package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/mxgate/mxgate/lab"
)

// guide prints where each part of the lab is and how to use it.
func guide(w io.Writer, s *state, l *lab.Lab) {
	holder := "nobody"
	for i := 1; i <= nodes; i++ {
		if ok, _ := l.HasAddr(l.Node(i), lab.VIP); ok {
			holder = fmt.Sprintf("n%d", i)
		}
	}
	pid := func(name string) string {
		if p, ok := s.proc(name); ok && p.Running() {
			return fmt.Sprint(p.PID)
		}
		return "-"
	}
	c := l.Client()
	mail := filepath.Join(s.Dir, "mail")
	admin := fmt.Sprintf("http://%s:%d", lab.VIP, adminPort)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("part         namespace     address            pid")
	for i := 1; i <= nodes; i++ {
		p("mxgate n%d    %-13s %-18s %-8s priority %d, log %s", i, l.Node(i), lab.NodeAddr(i), pid(fmt.Sprintf("n%d", i)),
			priority(i), filepath.Join(s.Dir, fmt.Sprintf("n%d", i), "log"))
	}
	p("VIP                        %-18s          held by %s", lab.VIP, holder)
	p("Redis        %-13s %-18s %s", l.Host(redisHost), redisAddr+":6379", pid("redis"))
	p("mail server  %-13s %-18s %-8s smtp-sink; messages land in %s/", l.Host(mailHost), mailAddr+":25", pid("mail"), mail)
	p("client       %-13s %s", c, lab.ClientAddr)
	p("")
	p("Send mail through the VIP (from the client namespace) and look at it:")
	p("  ip netns exec %s swaks --server %s --from alice@example.com --to bob@%s", c, lab.VIP, domain)
	p("  ls %s/", mail)
	p("Spam (GTUBE) goes to the quarantine:")
	p("  ip netns exec %s swaks --server %s --to bob@%s --body 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'", c, lab.VIP, domain)
	p("")
	p("Admin API: %s (the master), http://198.18.0.1[1-3]:%d (each node); token %s", admin, adminPort, s.Token)
	p("  export MXGATE_ADMIN=%s MXGATE_TOKEN=%s", admin, s.Token)
	p("  ip netns exec %s %s cluster status", c, s.Bin)
	p("  ip netns exec %s %s quarantine list", c, s.Bin)
	p("Node files: %s/n1/mxgate.yaml (n2, n3); logs: tail -f %s/n*/log", s.Dir, s.Dir)
	p("")
	p("Failover: stop the master and watch the VIP move to n2 (priority 100):")
	if n1 := pid("n1"); n1 != "-" {
		p("  kill %s        # SIGTERM: n1 hands the VIP over at once; kill -9: n2 takes it after about 3 s", n1)
	} else {
		p("  (n1 does not run now)")
	}
	p("  make lab-status%s", labArg(s.Name))
	p("  restart n1 (it takes the VIP back):")
	p("  setsid ip netns exec %s %s serve -c %s/n1/mxgate.yaml >>%s/n1/log 2>&1 </dev/null &", l.Node(1), s.Bin, s.Dir, s.Dir)
	p("")
	p("Remove everything: make lab-down%s", labArg(s.Name))
	io.WriteString(w, b.String())
}

// labArg is the make argument naming a lab other than the default.
func labArg(name string) string {
	if name == "mxlab" {
		return ""
	}
	return " LAB=" + name
}
