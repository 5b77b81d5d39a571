package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// Tracking (issue 12): two nodes 200/100, 200 ms adverts, preempt on, each
// relaying to its own downstream (an smtp-sink in the client namespace,
// one port per node) and tracking it with weight -150.
//   - n1's downstream stops: n1 advertises 50 and n2 takes the VIP; mail
//     sent to the VIP then arrives at n2's downstream.
//   - n1's downstream returns: n1 advertises 200 again and preempts.
//   - n1's link goes down (tracked by default): n1 enters fault, holds no
//     VIP, its notify hook gets "fault"; n2 is the only master. Link up:
//     n1 recovers to backup and preempts again.
func TestClusterTrack(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "swaks")
	lab := testenv.NewLab(t, 2)
	const advert = 200 * time.Millisecond
	vip := testenv.LabVIP + ":25"
	down1, down2 := lab.ClientAddr()+":2601", lab.ClientAddr()+":2602"
	sink1 := lab.StartSink(t, lab.Client(), down1)
	sink2 := lab.StartSink(t, lab.Client(), down2)

	hookOut := filepath.Join(t.TempDir(), "notify.log")
	hook := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$*\" >> "+hookOut+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	track := "  track: [{check: downstream, weight: -150, interval: 200ms, fall: 2, rise: 2}]\n"
	n1 := startNode(t, lab, 1, nodeConf{prio: 200, advert: advert, preempt: true, down: down1, extra: track + "  notify: " + hook + "\n"})
	n2 := startNode(t, lab, 2, nodeConf{prio: 100, advert: advert, preempt: true, down: down2, extra: track})
	n1.waitState(t, "master", 5*time.Second)
	n2.waitState(t, "backup", 2*time.Second)
	waitBanner(t, lab, vip, "n1.lab.test", 5*time.Second)
	if st := n1.status(t); st.EffectivePriority != 200 || len(st.Track) != 2 || st.Track[0].Check != "downstream" || st.Track[0].Failing ||
		st.Track[1].Check != "interface" || !st.Track[1].Fault {
		t.Errorf("n1 healthy: %+v, want effective priority 200, downstream and (implicit) interface tracked, none failing", st)
	}

	// The master's downstream goes away; n2's stays.
	t0 := time.Now()
	sink1.Proc.Stop(syscall.SIGTERM, 5*time.Second)
	waitBanner(t, lab, vip, "n2.lab.test", 10*time.Second)
	t.Logf("downstream of n1 stopped: n2 answered on the VIP after %s", time.Since(t0).Round(time.Millisecond))
	waitHeld(t, lab, 1, false, 2*time.Second)
	st1 := n1.waitState(t, "backup", 2*time.Second)
	if st1.EffectivePriority != 50 || !st1.Track[0].Failing || !strings.Contains(st1.Track[0].Error, down1) {
		t.Errorf("n1 with its downstream gone: %+v, want effective priority 50, downstream failing", st1)
	}
	if tr := n2.transitions(); len(tr) == 0 || tr[len(tr)-1].to != "master" || tr[len(tr)-1].reason != "preempt" {
		t.Errorf("n2's transitions %+v, want the last to master for preempt", tr)
	}
	if h := heldBy(t, lab); !slices.Equal(h, []int{2}) {
		t.Errorf("VIP held by %v, want [2]", h)
	}
	out, code := swaksVia(t, []string{"ip", "netns", "exec", lab.Client()}, vip,
		"--from", "alice@sender.test", "--to", "bob@lab.test", "--header", "Subject: tracked failover")
	if code != 0 {
		t.Fatalf("mail to the VIP after the failover: swaks exit %d\n%s", code, out)
	}
	if msgs := sink2.Messages(t); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: tracked failover") {
		t.Errorf("n2's downstream got %d messages, want the one sent: %q", len(msgs), msgs)
	}

	// The downstream returns: n1 advertises 200 again and preempts.
	t1 := time.Now()
	lab.StartSink(t, lab.Client(), down1)
	waitBanner(t, lab, vip, "n1.lab.test", 10*time.Second)
	t.Logf("downstream of n1 back: n1 answered on the VIP after %s", time.Since(t1).Round(time.Millisecond))
	n2.waitState(t, "backup", 2*time.Second)
	if st := n1.status(t); st.State != "master" || st.EffectivePriority != 200 || st.Track[0].Failing {
		t.Errorf("n1 recovered: %+v, want master at 200", st)
	}

	// n1's link goes down: fault, no VIP; n2 the only master.
	if err := lab.LinkDown(1); err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	waitBanner(t, lab, vip, "n2.lab.test", 2*masterDown(advert, 100)+2*time.Second)
	t.Logf("link of n1 down: n2 answered on the VIP after %s", time.Since(t2).Round(time.Millisecond))
	st1 = n1.waitState(t, "fault", 2*time.Second)
	if st1.VIPHeld || !st1.Track[1].Failing {
		t.Errorf("n1 with its link down: %+v, want fault without the VIP, interface failing", st1)
	}
	waitHeld(t, lab, 1, false, time.Second)
	time.Sleep(3 * advert)
	if h := heldBy(t, lab); !slices.Equal(h, []int{2}) {
		t.Errorf("VIP held by %v with n1's link down, want [2] (no second master on a dead link)", h)
	}
	if st := n1.status(t); st.State != "fault" {
		t.Errorf("n1 left fault with its link down: %+v", st)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	text, err := lab.Exec(ctx, lab.Node(1), mxgateBin, "cluster", "status", "--admin", "127.0.0.1:8025")
	cancel()
	// (The downstream, behind the same link, fails too by now or soon.)
	for _, want := range []string{"fault for ", "interface FAILING (fault): link down"} {
		if err != nil || !strings.Contains(text, want) {
			t.Errorf("mxgate cluster status on n1: %v, lacks %q:\n%s", err, want, text)
		}
	}

	// Link up: backup first, then (preempt) master at n2's next advert.
	if err := lab.LinkUp(1); err != nil {
		t.Fatal(err)
	}
	waitBanner(t, lab, vip, "n1.lab.test", 10*time.Second)
	n2.waitState(t, "backup", 2*time.Second)
	trs := n1.transitions()
	if len(trs) < 3 || trs[len(trs)-2].to != "backup" || trs[len(trs)-2].reason != "recovered" || trs[len(trs)-1].to != "master" {
		t.Errorf("n1's transitions %+v, want ... backup (recovered), master", trs)
	}
	if h := heldBy(t, lab); !slices.Equal(h, []int{1}) {
		t.Errorf("VIP held by %v after the link returned, want [1]", h)
	}
	// The notify hook saw every transition in order with the priority n1
	// advertised then: lowered to 50 while its downstream was gone (and
	// again once the unreachable downstream failed while in fault).
	want := []string{"backup 51 200", "master 51 200", "backup 51 50", "master 51 200", "fault 51 200", "backup 51 ", "master 51 200"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(hookOut)
		got := strings.Split(strings.TrimSpace(string(b)), "\n")
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.HasPrefix(got[i], want[i])
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("notify hook calls %q, want %q", got, want)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}
