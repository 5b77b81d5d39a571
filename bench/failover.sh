#!/usr/bin/env bash
# bench/failover.sh - VRRP failover as an SMTP client sees it: mxgate and
# keepalived side by side in the same namespace lab. Writes
# bench/results/failover.md. See bench/README.md ("Failover").
#
# Lab: `mxgate-lab up -bare` (the namespaces of `make lab`, package lab; all
# names mxb<pid>-*, nothing outside these namespaces is touched):
#   mxb<pid>-sw  switch namespace, bridge br0 (no STP, no IGMP snooping)
#   mxb<pid>-hI  node I=1..3 at 198.18.0.(10+I)/24 on eth0, priorities 200/100/50
#   mxb<pid>-c   client 198.18.0.250/24; VIP 198.18.0.100/24, VRID 51, VRRPv3
# The client dials VIP:25 every 10 ms (200 ms timeout, dials overlap) and logs
# which node's banner answered ("220 n1.lab.test ..."); keepalived nodes get a
# stand-in banner server on 0.0.0.0:25 with the same names.
#
# For each implementation × advert interval × scenario, RUNS times one run of
# the scenario. Scenarios (run_<name> below; TABLE says which results table a
# scenario's row goes to, and each table lists its columns: a new scenario is
# one function and one TABLE entry):
#   kill9, sigterm (table "failover"): settle (n1 master, 3 adverts + 1 s),
#     start the probe, hit n1
#       kill9:   mxgate: SIGKILL; keepalived: SIGSTOP parent, SIGKILL VRRP child
#                and parent (no priority-0 advert, the VIP stays on n1)
#       sigterm: SIGTERM (priority-0 advert, VIP released)
#     wait for n2 on the VIP, restart n1 (it preempts), wait for n1 again.
#   tracked (table "failover"): as above, but the hit stops n1's downstream
#     (each node relays to its own stand-in downstream in the client
#     namespace, 198.18.0.250:260I, and tracks it with weight -150, checked
#     every 1 s, fall 1, rise 1: mxgate cluster.track, keepalived a
#     track_script doing the same connect with bash's /dev/tcp); instead of
#     restarting n1, its downstream is started again ("preempt" from then)
#   kill9-ipv6 (table "failover"): kill9 with an IPv6 VIP fd00:198:18::100/64
#     (RFC 5798 over IPv6; the lab gets IPv6 with -ipv6), client dials
#     [VIP]:25; its own block after the main loop (the nodes run IPv6 configs)
#   startmaster, startbackup (table "return"): the seed's two ways back for a
#     higher-priority node. n1 stopped (SIGTERM), n2 master and settled, then
#     n1 starts with start_state master (keepalived: state MASTER) or
#     start_state backup (keepalived: state BACKUP, preempt), at a random
#     phase of n2's adverts, while the probe dials and a sniffer in the client
#     namespace logs every VRRP advert.
# Numbers per run (ms):
#   failover = hit -> first banner from another node (the client's outage bound)
#   gap      = last banner from n1 -> first banner from another node
#   daemon   = hit -> the new master's notify hook ran (the daemon's own view,
#              plus a fork/exec)
#   preempt  = n1 restarted -> first banner from n1 again (includes its start)
#   vip      = n1 started -> first banner from n1 on the VIP
#   advert   = n1 started -> n1's first advert on the wire
#   takeover = n2's last advert before n1's first -> n1's first advert
#   heard    = n2's adverts on the wire between n1's start and its first advert
#   two      = n1's notify "master" -> n2's notify "backup": both claim the VIP
#   stall    = longest pause between probe dials (a large one = VM stall, not VRRP)
#
# usage: sudo bench/failover.sh
#   knobs (environment): RUNS=5  ADVERTS="1 0.1"
#   SCENARIOS="kill9 sigterm tracked kill9-ipv6 startmaster startbackup"
#   IMPLS="mxgate keepalived"  QUICK=1 (RUNS=3 ADVERTS=0.1: about two minutes)
#   MACHINE_NOTE="shared with other jobs" (added to the machine line)
#   BIN=path/to/mxgate (default: build from this checkout)  KEEP=1 (keep the
#   work dir)  OUT=bench/results/failover.md  GO=go
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-3}; ADVERTS=${ADVERTS:-0.1}; fi
RUNS=${RUNS:-5}
ADVERTS=${ADVERTS:-"1 0.1"}
SCENARIOS=${SCENARIOS:-"kill9 sigterm tracked kill9-ipv6 startmaster startbackup"}
# the results table of each scenario (see the table_* functions at the end)
declare -A TABLE=([kill9]=failover [sigterm]=failover [tracked]=failover [kill9-ipv6]=failover [startmaster]=return [startbackup]=return)
IMPLS=${IMPLS:-"mxgate keepalived"}
KEEP=${KEEP:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/results/failover.md}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
BIN=${BIN:-}

die() { echo "failover: $*" >&2; exit 1; }
log() { echo "## $*" >&2; }
for sc in $SCENARIOS; do [ -n "${TABLE[$sc]:-}" ] || die "unknown scenario $sc (known: ${!TABLE[*]})"; done
[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, raw sockets, port 25)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
for c in ip awk sort; do command -v "$c" >/dev/null || die "$c not found"; done
case " $IMPLS " in *" keepalived "*) command -v keepalived >/dev/null || die "keepalived not found (apt-get install keepalived, or IMPLS=mxgate)" ;; esac

P=mxb$$
C=$P-c
VIP=198.18.0.100
W=$(mktemp -d "${TMPDIR:-/tmp}/mxgate-failover.XXXXXX")
declare -A PID=() VPID=() DPID=()   # node -> pid we started (mxgate / keepalived parent); keepalived VRRP child; its downstream
SRV_PIDS=()
PROBE_PID=
SNIFF_PID=
T_START=$(date +%s)

cleanup() {
	set +e
	[ -n "$PROBE_PID" ] && kill -TERM "$PROBE_PID" 2>/dev/null
	[ -n "$SNIFF_PID" ] && kill -TERM "$SNIFF_PID" 2>/dev/null
	for n in "${!PID[@]}"; do kill -TERM "${PID[$n]}" 2>/dev/null; done
	for p in "${SRV_PIDS[@]}" "${DPID[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	# whatever still runs in our namespaces is ours (keepalived children):
	# down stops it and deletes the namespaces
	[ -x "$W/mxgate-lab" ] && "$W/mxgate-lab" down -name "$P" -state "$W" >/dev/null
	if [ "$KEEP" = 1 ]; then echo "work dir: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
(cd "$TOP" && "$GO" build -o "$W/mxgate-lab" ./cmd/mxgate-lab) || die "go build of the lab command failed"
if [ -z "$BIN" ]; then
	log "building mxgate"
	(cd "$TOP" && "$GO" build -o "$W/mxgate" ./cmd/mxgate) || die "go build failed"
	BIN=$W/mxgate
fi
[ -x "$BIN" ] || die "no mxgate binary at $BIN"

mkdir -p "$W/probe"
cat >"$W/probe/go.mod" <<'EOF'
module failprobe

go 1.22
EOF
cat >"$W/probe/main.go" <<'EOF'
// failprobe: banner server, prober and analyzer for failover measurements.
//   failprobe serve NAME ADDR          greet every connection with "220 NAME stand-in"
//   failprobe probe ADDR INTERVAL_MS   dial every interval (200 ms timeout, overlapping);
//                                      print "start_ns end_ns NAME|ERR" until SIGTERM
//   failprobe once ADDR                one dial: NAME or ERR
//   failprobe analyze FILE T0 OLD TEND failover numbers for the event at T0 (dials before TEND)
//   failprobe sniff IFACE              print "time_ns src priority" for every VRRP packet
//                                      seen on IFACE (AF_PACKET) until SIGTERM
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func dial(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "ERR"
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220 ") {
		return "ERR"
	}
	c.Write([]byte("QUIT\r\n"))
	f := strings.Fields(line[4:])
	if len(f) == 0 {
		return "ERR"
	}
	return f[0]
}

type res struct {
	start, end int64
	name       string
}

func probe(addr string, iv time.Duration) {
	out := make(chan res, 4096)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		w := bufio.NewWriter(os.Stdout)
		for r := range out {
			fmt.Fprintf(w, "%d %d %s\n", r.start, r.end, r.name)
			w.Flush()
		}
		close(done)
	}()
	t := time.NewTicker(iv)
	slots := make(chan struct{}, 64)
	for {
		select {
		case <-sig:
			t.Stop()
			for i := 0; i < cap(slots); i++ {
				slots <- struct{}{}
			}
			close(out)
			<-done
			return
		case <-t.C:
			select {
			case slots <- struct{}{}:
			default:
				continue
			}
			go func() {
				defer func() { <-slots }()
				s := time.Now()
				n := dial(addr)
				out <- res{s.UnixNano(), time.Now().UnixNano(), n}
			}()
		}
	}
}

func serve(name, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "220 %s stand-in\r\n", name)
			bufio.NewReader(c).ReadString('\n')
		}()
	}
}

func analyze(file string, t0, tend int64, old string) {
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	var rs []res
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) != 3 {
			continue
		}
		s, _ := strconv.ParseInt(p[0], 10, 64)
		e, _ := strconv.ParseInt(p[1], 10, 64)
		if tend > 0 && s >= tend {
			continue
		}
		rs = append(rs, res{s, e, p[2]})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].end < rs[j].end })
	var starts []int64
	for _, r := range rs {
		if r.start >= t0 {
			starts = append(starts, r.start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	stall := int64(0)
	for i := 1; i < len(starts); i++ {
		stall = max(stall, starts[i]-starts[i-1])
	}
	first, lastOld, newName := int64(-1), int64(-1), "-"
	for _, r := range rs {
		if r.name == "ERR" {
			continue
		}
		if r.name == old {
			if first < 0 {
				lastOld = r.end
			}
			continue
		}
		if r.start >= t0 && first < 0 {
			first, newName = r.end, r.name
		}
	}
	ms := func(v int64) string {
		if v < 0 {
			return "NA"
		}
		return fmt.Sprintf("%.0f", float64(v)/1e6)
	}
	fo, gap := int64(-1), int64(-1)
	if first >= 0 {
		fo = first - t0
		if lastOld >= 0 {
			gap = first - lastOld
		}
	}
	fmt.Printf("failover=%s gap=%s new=%s stall=%s\n", ms(fo), ms(gap), newName, ms(stall))
}

// sniff reads IPv4 frames from iface with a packet socket (it sees the
// multicast adverts without joining the group) and prints the VRRP ones.
func sniff(iface string) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ethPIP := uint16(syscall.ETH_P_IP)   // a variable: the swap must not be constant-folded
	proto := ethPIP<<8 | ethPIP>>8 // network order
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(proto))
	if err == nil {
		err = syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	}
	if err == nil {
		// wake up now and then to notice SIGTERM
		err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Usec: 100000})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sniff:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	buf := make([]byte, 2048)
	for {
		select {
		case <-sig:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil || n < 20 {
			continue
		}
		now := time.Now().UnixNano()
		hl := int(buf[0]&0x0f) * 4
		if buf[0]>>4 != 4 || buf[9] != 112 || n < hl+8 {
			continue
		}
		fmt.Fprintf(w, "%d %d.%d.%d.%d %d\n", now, buf[12], buf[13], buf[14], buf[15], buf[hl+2])
		w.Flush()
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: failprobe serve|probe|once|analyze|sniff ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2], os.Args[3])
	case "probe":
		iv, _ := strconv.Atoi(os.Args[3])
		probe(os.Args[2], time.Duration(iv)*time.Millisecond)
	case "once":
		fmt.Println(dial(os.Args[2]))
	case "sniff":
		sniff(os.Args[2])
	case "analyze":
		t0, _ := strconv.ParseInt(os.Args[3], 10, 64)
		tend, _ := strconv.ParseInt(os.Args[5], 10, 64)
		analyze(os.Args[2], t0, tend, os.Args[4])
	}
}
EOF
log "building the probe"
(cd "$W/probe" && GOFLAGS=-mod=mod "$GO" build -o "$W/failprobe" .) || die "probe build failed"
PROBE=$W/failprobe

# ---------------------------------------------------------------- lab
# (processes put in the background are started with "ip netns exec" itself,
# never through a function: $! must be the program's pid, ip execs it)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
log "lab $P"
LABV6=
case " $SCENARIOS " in *" kill9-ipv6 "*) LABV6=-ipv6 ;; esac
"$W/mxgate-lab" up -bare $LABV6 -name "$P" -state "$W" >&2 || die "the lab did not come up"

# ---------------------------------------------------------------- nodes
prio() { case $1 in 1) echo 200 ;; 2) echo 100 ;; *) echo 50 ;; esac; }
now() { date +%s%N; }
NOTIFY_LOG=$W/notify.log
: >"$NOTIFY_LOG"

write_mxgate() { # node advert_s [start state: backup|master]
	local i=$1 adv=$2 st=${3:-backup} d=$W/mx-h$1
	mkdir -p "$d"
	cat >"$d/notify" <<EOF
#!/bin/sh
echo "\$(date +%s%N) $i \$1" >> $NOTIFY_LOG
EOF
	chmod 700 "$d/notify"
	cat >"$d/mxgate.yaml" <<EOF
node: {id: n$i, data_dir: $d/data, log_level: info}
smtp:
  listen: ["$VIP:25", "198.18.0.$((10 + i)):25"]
  hostname: n$i.lab.test
  accept_domains: [lab.test]
  drain_timeout: 2s
downstream: {address: "198.18.0.250:260$i"}
admin: {listen: "127.0.0.1:8025"}
cluster:
  enabled: true
  interface: eth0
  vrid: 51
  vip: $VIP/24
  priority: $(prio "$i")
  advert_interval: ${adv}s
  start_state: $st
  preempt: true
  notify: $d/notify
  secret: bench-secret-bench-secret
  track: [{check: downstream, weight: -150, interval: 1s, fall: 1, rise: 1}]
EOF
}

write_keepalived() { # node advert_s [start state: backup|master]
	local i=$1 adv=$2 st=${3:-backup} d=$W/ka-h$1
	mkdir -p "$d"
	cat >"$d/notify" <<EOF
#!/bin/sh
echo "\$(date +%s%N) $i \$3" >> $NOTIFY_LOG
EOF
	chmod 700 "$d/notify"
	cat >"$d/check" <<EOF
#!/bin/bash
exec 3<>/dev/tcp/198.18.0.250/260$i
EOF
	chmod 700 "$d/check"
	cat >"$d/keepalived.conf" <<EOF
global_defs {
  router_id mxb-h$i
  vrrp_version 3
  enable_script_security
  script_user root
}
vrrp_script downstream {
  script $d/check
  interval 1
  timeout 1
  weight -150
  fall 1
  rise 1
}
vrrp_instance VI_1 {
  state ${st^^}
  interface eth0
  virtual_router_id 51
  priority $(prio "$i")
  advert_int $adv
  virtual_ipaddress {
    $VIP/24 dev eth0
  }
  notify $d/notify
  track_script {
    downstream
  }
}
EOF
}

start_node() { # impl node
	local impl=$1 i=$2
	if [ "$impl" = mxgate ]; then
		ip netns exec "$P-h$i" "$BIN" serve -c "$W/mx-h$i/mxgate.yaml" >>"$W/mx-h$i/log" 2>&1 &
		PID[$i]=$!
	else
		local d=$W/ka-h$i
		rm -f "$d/vrrp.pid"
		ip netns exec "$P-h$i" keepalived -n -l -D -P -B -f "$d/keepalived.conf" -p "$d/pid" -r "$d/vrrp.pid" \
			-c "$d/chk.pid" -b "$d/bfd.pid" >>"$d/log" 2>&1 &
		PID[$i]=$!
		local k
		for k in $(seq 250); do [ -s "$d/vrrp.pid" ] && break; sleep 0.02; done
		VPID[$i]=$(cat "$d/vrrp.pid" 2>/dev/null || true)
	fi
}

# start_downstream node: the node's stand-in downstream server (tracked).
start_downstream() {
	ip netns exec "$C" "$PROBE" serve "ds$1" "198.18.0.250:260$1" &
	DPID[$1]=$!
}

# hit_node impl node kill9|sigterm|tracked: sets T0 (the moment of the hit)
# and waits until the process we started (for tracked: n1's downstream) has
# ended.
hit_node() {
	local impl=$1 i=$2 how=$3 p=${PID[$2]}
	if [ "$how" = tracked ]; then
		T0=$(now)
		kill -TERM "${DPID[$i]}"
		wait "${DPID[$i]}" 2>/dev/null || true
		unset "DPID[$i]"
		return
	fi
	if [ "$how" = kill9 ]; then
		if [ "$impl" = keepalived ]; then
			kill -STOP "$p"  # so the parent neither respawns nor cleans up
			T0=$(now)
			kill -KILL "${VPID[$i]}" 2>/dev/null || true
		else
			T0=$(now)
		fi
		kill -KILL "$p"
	else
		T0=$(now)
		kill -TERM "$p"
	fi
	wait "$p" 2>/dev/null || true
	unset "PID[$i]"
}

stop_all() {
	local i
	for i in "${!PID[@]}"; do kill -TERM "${PID[$i]}" 2>/dev/null || true; done
	for i in "${!PID[@]}"; do wait "${PID[$i]}" 2>/dev/null || true; unset "PID[$i]"; done
}

answer() { in_ns "$C" "$PROBE" once "$VIP:25"; }
wait_answer() { # name timeout_s
	local deadline=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le "$deadline" ]; do
		[ "$(answer)" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
wait_probe() { # file name since_ns timeout_s: the probe log shows name answering after since
	local deadline=$(($(date +%s) + $4))
	while [ "$(date +%s)" -le "$deadline" ]; do
		awk -v t="$3" -v n="$2" '$1>=t && $3==n {f=1; exit} END {exit !f}' "$1" && return 0
		sleep 0.02
	done
	return 1
}
first_notify() { # t0 node -> ms until that node's hook reported master, or NA
	awk -v t0="$1" -v n="$2" '$1>=t0 && $2==n && tolower($3)=="master" {printf "%.0f\n", ($1-t0)/1e6; f=1; exit} END {if (!f) print "NA"}' "$NOTIFY_LOG"
}

notify_at() { # t0 node state -> ms from t0 until that node's hook reported state, or NA
	awk -v t0="$1" -v n="$2" -v s="$3" '$1>=t0 && $2==n && tolower($3)==s {printf "%.0f\n", ($1-t0)/1e6; f=1; exit} END {if (!f) print "NA"}' "$NOTIFY_LOG"
}
start_probe() { # file
	ip netns exec "$C" "$PROBE" probe "$VIP:25" 10 >"$1" &
	PROBE_PID=$!
}
stop_probe() {
	kill -TERM "$PROBE_PID"
	wait "$PROBE_PID" 2>/dev/null || true
	PROBE_PID=
}
stop_sniff() {
	kill -TERM "$SNIFF_PID"
	wait "$SNIFF_PID" 2>/dev/null || true
	SNIFF_PID=
}

# A run_<scenario> function does one run and leaves its results in FIELDS
# ("name=value ..."). It runs in this shell, never in $(...): the processes
# it starts and stops are tracked in PID.
FIELDS=

# run_kill9/run_sigterm/run_tracked impl adv run: one failover run.
run_kill9() { run_failover "$1" "$2" "$3" kill9; }
run_sigterm() { run_failover "$1" "$2" "$3" sigterm; }
run_tracked() { run_failover "$1" "$2" "$3" tracked; }
run_failover() { # impl adv run how
	local impl=$1 adv=$2 r=$3 sc=$4 f fo pr
	wait_answer n1.lab.test "$limit" || die "$impl: n1 not back on the VIP before run $r"
	sleep "$settle"
	f=$W/probe-$impl-$adv-$sc-$r.txt
	start_probe "$f"
	sleep 0.3
	hit_node "$impl" 1 "$sc"
	FT0=$T0
	wait_probe "$f" n2.lab.test "$FT0" "$limit" || log "WARN: no takeover by n2 seen ($impl $adv $sc $r)"
	sleep 0.2
	PT0=$(now)
	if [ "$sc" = tracked ]; then start_downstream 1; else start_node "$impl" 1; fi
	wait_probe "$f" n1.lab.test "$PT0" "$limit" || log "WARN: n1 did not take the VIP back ($impl $adv $sc $r)"
	sleep 0.2
	stop_probe
	fo=$("$PROBE" analyze "$f" "$FT0" n1.lab.test "$PT0")
	pr=$("$PROBE" analyze "$f" "$PT0" n2.lab.test 0 | sed -n 's/^failover=\([0-9NA]*\).*/\1/p')
	FIELDS="$fo daemon=$(first_notify "$FT0" 2) preempt=$pr"
}

# run_startmaster/run_startbackup impl adv run: n1 returns to a cluster
# where n2 is master, with the given start state.
run_startmaster() { run_return "$1" "$2" "$3" master; }
run_startbackup() { run_return "$1" "$2" "$3" backup; }
run_return() { # impl adv run start_state
	local impl=$1 adv=$2 r=$3 st=$4 f s vip ad
	wait_answer n1.lab.test "$limit" || die "$impl: n1 not back on the VIP before run $r"
	sleep "$settle"
	hit_node "$impl" 1 sigterm
	wait_answer n2.lab.test "$limit" || log "WARN: n2 did not take over ($impl $adv start $st $r)"
	# n2 settled, and n1 comes back at a random phase of n2's adverts
	sleep "$(awk -v a="$adv" -v seed="$RANDOM" 'BEGIN {srand(seed); print 3 * a + 0.5 + rand() * a}')"
	"write_$impl" 1 "$adv" "$st"
	f=$W/probe-$impl-$adv-start$st-$r.txt
	s=$W/sniff-$impl-$adv-start$st-$r.txt
	start_probe "$f"
	ip netns exec "$C" "$PROBE" sniff eth0 >"$s" &
	SNIFF_PID=$!
	sleep 0.3
	T0=$(now)
	start_node "$impl" 1
	wait_probe "$f" n1.lab.test "$T0" "$limit" || log "WARN: n1 did not take the VIP ($impl $adv start $st $r)"
	# n2's notify, and adverts after the takeover (there should be none from n2)
	sleep "$(awk -v a="$adv" 'BEGIN {print a + 0.3}')"
	stop_probe
	stop_sniff
	"write_$impl" 1 "$adv" backup # the other scenarios restart n1 as before
	vip=$("$PROBE" analyze "$f" "$T0" n2.lab.test 0 | sed -n 's/^failover=\([0-9NA]*\).*/\1/p')
	ad=$(awk -v t0="$T0" -v n1=198.18.0.11 -v n2=198.18.0.12 '
		$3 == 0 { next }
		$2 == n2 { if (!f1) { last2 = $1; if ($1 >= t0) heard++ } else after++ }
		$2 == n1 && $1 >= t0 && !f1 { f1 = $1 }
		END {
			if (!f1) { print "advert=NA takeover=NA heard=NA after=NA"; exit }
			to = (last2 >= t0) ? sprintf("%.0f", (f1 - last2) / 1e6) : "NA"
			printf "advert=%.0f takeover=%s heard=%d after=%d\n", (f1 - t0) / 1e6, to, heard, after
		}' "$s")
	local m b two=NA
	m=$(notify_at "$T0" 1 master)
	b=$(notify_at "$T0" 2 backup)
	[ "$m" != NA ] && [ "$b" != NA ] && two=$((b - m))
	FIELDS="vip=$vip $ad two=$two"
}

RAW=$W/raw.txt
: >"$RAW"
for i in 1 2 3; do start_downstream "$i"; done
for impl in $IMPLS; do
	if [ "$impl" = keepalived ]; then
		for i in 1 2 3; do
			ip netns exec "$P-h$i" "$PROBE" serve "n$i.lab.test" 0.0.0.0:25 &
			SRV_PIDS+=($!)
		done
	fi
	for adv in $ADVERTS; do
		log "$impl, adverts every ${adv}s"
		for i in 1 2 3; do "write_$impl" "$i" "$adv"; done
		for i in 1 2 3; do start_node "$impl" "$i"; done
		settle=$(awk -v a="$adv" 'BEGIN {print 3 * a + 1}')
		limit=$(awk -v a="$adv" 'BEGIN {print int(6 * a) + 5}')
		wait_answer n1.lab.test "$limit" || die "$impl: n1 never answered on the VIP (logs in $W)"
		for sc in $SCENARIOS; do
			[ "$sc" = kill9-ipv6 ] && continue # its own block below
			for r in $(seq "$RUNS"); do
				"run_$sc" "$impl" "$adv" "$r"
				line="impl=$impl adv=$adv sc=$sc run=$r $FIELDS"
				echo "$line" >>"$RAW"
				log "$line"
			done
		done
		stop_all
		sleep 0.5
	done
	if [ ${#SRV_PIDS[@]} -gt 0 ]; then
		for p in "${SRV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
		SRV_PIDS=()
	fi
done

# ---------------------------------------------------------------- IPv6 kill -9
# The kill9 scenario with an IPv6 VIP: the same nodes and priorities, the
# configurations rewritten for fd00:198:18::100/64 (keepalived: native_ipv6),
# the client dialling [VIP]:25. Its neighbour cache follows the VIP through
# the new master's unsolicited neighbour advertisements.
VIP6=fd00:198:18::100
ipv6_conf() { # impl node: rewrite the node's IPv4 configuration for the IPv6 VIP
	local i=$2
	if [ "$1" = mxgate ]; then
		sed -i -e "s|\"$VIP:25\", \"198.18.0.$((10 + i)):25\"|\"[$VIP6]:25\", \"198.18.0.$((10 + i)):25\"|" \
			-e "s|vip: $VIP/24|vip: $VIP6/64\n  peer_listen: \"198.18.0.$((10 + i)):8026\"|" "$W/mx-h$i/mxgate.yaml"
	else
		sed -i -e "s|$VIP/24 dev eth0|$VIP6/64 dev eth0|" -e "s|  interface eth0|  interface eth0\n  native_ipv6|" "$W/ka-h$i/keepalived.conf"
	fi
}
case " $SCENARIOS " in *" kill9-ipv6 "*)
	for impl in $IMPLS; do
		if [ "$impl" = keepalived ]; then
			for i in 1 2 3; do
				ip netns exec "$P-h$i" "$PROBE" serve "n$i.lab.test" "[::]:25" &
				SRV_PIDS+=($!)
			done
		fi
		for adv in $ADVERTS; do
			log "$impl, IPv6, adverts every ${adv}s"
			for i in 1 2 3; do "write_$impl" "$i" "$adv"; ipv6_conf "$impl" "$i"; done
			for i in 1 2 3; do start_node "$impl" "$i"; done
			settle=$(awk -v a="$adv" 'BEGIN {print 3 * a + 1}')
			limit=$(awk -v a="$adv" 'BEGIN {print int(6 * a) + 5}')
			for r in $(seq "$RUNS"); do
				ok=
				for k in $(seq $((limit * 20))); do
					[ "$(in_ns "$C" "$PROBE" once "[$VIP6]:25")" = n1.lab.test ] && { ok=1; break; }
					sleep 0.05
				done
				[ -n "$ok" ] || die "$impl: n1 not on the IPv6 VIP before run $r (logs in $W)"
				sleep "$settle"
				f=$W/probe-$impl-$adv-kill9-ipv6-$r.txt
				ip netns exec "$C" "$PROBE" probe "[$VIP6]:25" 10 >"$f" &
				PROBE_PID=$!
				sleep 0.3
				hit_node "$impl" 1 kill9
				FT0=$T0
				wait_probe "$f" n2.lab.test "$FT0" "$limit" || log "WARN: no takeover by n2 seen ($impl $adv kill9-ipv6 $r)"
				sleep 0.2
				PT0=$(now)
				start_node "$impl" 1
				wait_probe "$f" n1.lab.test "$PT0" "$limit" || log "WARN: n1 did not take the IPv6 VIP back ($impl $adv $r)"
				sleep 0.2
				kill -TERM "$PROBE_PID"
				wait "$PROBE_PID" 2>/dev/null || true
				PROBE_PID=
				fo=$("$PROBE" analyze "$f" "$FT0" n1.lab.test "$PT0")
				pr=$("$PROBE" analyze "$f" "$PT0" n2.lab.test 0 | sed -n 's/^failover=\([0-9NA]*\).*/\1/p')
				line="impl=$impl adv=$adv sc=kill9-ipv6 run=$r $fo daemon=$(first_notify "$FT0" 2) preempt=$pr"
				echo "$line" >>"$RAW"
				log "$line"
			done
			stop_all
			sleep 0.5
		done
		if [ ${#SRV_PIDS[@]} -gt 0 ]; then
			for p in "${SRV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
			SRV_PIDS=()
		fi
	done
	;;
esac

# ---------------------------------------------------------------- results
med() { # values on stdin (NA ignored) -> "median (min-max)"
	grep -E '^-?[0-9]+$' | sort -n | awk '{a[NR] = $1} END {
		if (NR == 0) { print "NA"; exit }
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.0f (%d–%d)\n", m, a[1], a[NR] }'
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p"; }
expect() { # adv sc -> what the protocol promises, ms
	awk -v a="$1" -v s="$2" 'BEGIN {
		skew = (256 - 100) * a / 256
		if (s == "sigterm") printf "Skew_Time %.0f", skew * 1000
		else if (s == "kill9" || s == "kill9-ipv6") printf "Master_Down_Interval %.0f", (3 * a + skew) * 1000
		else if (s == "startmaster") printf "at start (target ≤ 100)"
		else if (s == "startbackup") printf "next advert ≤ %.0f", a * 1000
		else if (s == "tracked") printf "check ≤ 1000, then preemption"
		else printf "-" }'
}
# The tables: table_<name> prints a header, the rows come from the raw runs
# with the columns in COLS[<name>] (median and range of each field).
declare -A COLS=([failover]="failover gap daemon preempt" [return]="vip advert takeover heard two")
table_failover() {
	echo "## Failover: the master is hit"
	echo
	echo "Median (min–max) in ms. failover: hit → first banner from the new master;"
	echo "gap: last banner from the old master → first from the new; daemon: hit → the"
	echo "new master's notify hook; preempt: old master restarted → it answers again"
	echo "(includes its process start). tracked: hit = n1's downstream stopped (tracked,"
	echo "weight -150, checked every 1 s, fall 1, rise 1), preempt = it started again."
}
table_return() {
	echo "## Return: a higher-priority node comes back (start as master / start as backup)"
	echo
	echo "n2 (priority 100) is master; n1 (200) starts with start_state master"
	echo "(keepalived: state MASTER) or start_state backup (state BACKUP, preempt)."
	echo "Median (min–max) in ms. vip: n1 started → it answers on the VIP (includes"
	echo "its process start); advert: n1 started → its first advert on the wire;"
	echo "takeover: n2's last advert before n1's first → n1's first (start as backup:"
	echo "hearing the slave → taking over); heard: n2's adverts between n1's start and"
	echo "its first advert; two: n1's notify master → n2's notify backup (both claim"
	echo "the VIP; each includes a fork/exec)."
}
rows() { # table
	local t=$1 adv sc impl sel ok c cols
	cols=${COLS[$t]}
	printf '| implementation | advert | scenario | expected |'
	for c in $cols; do printf ' %s |' "$c"; done
	printf ' runs |\n|---|---:|---|---|'
	for c in $cols; do printf -- '---:|'; done
	printf -- '---:|\n'
	for adv in $ADVERTS; do
		for sc in $SCENARIOS; do
			[ "${TABLE[$sc]}" = "$t" ] || continue
			for impl in $IMPLS; do
				sel=$(grep "^impl=$impl adv=$adv sc=$sc " "$RAW" || true)
				[ -n "$sel" ] || continue
				ok=$(echo "$sel" | field "${cols%% *}" | grep -cE '^-?[0-9]+$' || true)
				printf '| %s | %ss | %s | %s |' "$impl" "$adv" "$sc" "$(expect "$adv" "$sc")"
				for c in $cols; do printf ' %s |' "$(echo "$sel" | field "$c" | med)"; done
				printf ' %s/%s |\n' "$ok" "$RUNS"
			done
		done
	done
}
ka_version() {
	local v
	v=$(keepalived -v 2>&1 | sed -n 1p) || true
	echo "${v:--}"
}
T_END=$(date +%s)
mkdir -p "$(dirname "$OUT")"
{
	echo "# mxgate VRRP failover benchmark"
	echo
	echo 'Produced by `bench/failover.sh` (see [bench/README.md](../README.md)); overwritten on every run.'
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| machine | $(nproc) CPU, kernel $(uname -r)${MACHINE_NOTE:+; $MACHINE_NOTE} |"
	echo "| mxgate | $( (cd "$TOP" && git rev-parse --short HEAD 2>/dev/null) || echo '?')$( (cd "$TOP" && git diff --quiet HEAD -- . ':(exclude)bench/results' 2>/dev/null) || echo ' + uncommitted changes') |"  # the results file itself is being rewritten
	echo "| keepalived | $(ka_version) |"
	echo "| setup | 3 nodes (priority 200/100/50, preempt), VRRPv3 multicast, VIP $VIP; client dials VIP:25 every 10 ms; $RUNS runs per row |"
	echo "| runtime | $(((T_END - T_START) / 60))m$(((T_END - T_START) % 60))s |"
	echo
	for t in failover return; do
		case " $(for sc in $SCENARIOS; do echo "${TABLE[$sc]}"; done | tr '\n' ' ') " in *" $t "*) ;; *) continue ;; esac
		"table_$t"
		echo
		rows "$t"
		echo
	done
	echo "Spec targets: a backup answers on the VIP within Master_Down_Interval + 100 ms;"
	echo "a returning node with start_state master holds the VIP within 100 ms of its start."
	echo "A run with a large stall (probe pause) was disturbed by the machine, not by VRRP."
	echo
	echo "## Raw runs"
	echo
	echo '```'
	cat "$RAW"
	echo '```'
} >"$OUT"
log "results in $OUT"
cat "$OUT"
