package enginebench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux whatever the kernel's HZ).
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU (user and system, and that of children already
// reaped) of the processes roots, of their process groups and of their
// descendants: spamd's forked children, rspamd's workers. A child that
// exits between two reads moves from its own count to its parent's
// cutime/cstime, so differences of treeCPU stay right.
func treeCPU(roots ...int) time.Duration {
	type proc struct {
		ppid, pgrp int
		ticks      int64
	}
	procs := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// The command name may hold spaces and parentheses: the fields
		// start after the last ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 {
			continue
		}
		// f[0] is field 3 (state): ppid 4, pgrp 5, utime 14 … cstime 17.
		p := proc{ppid: atoi(f[1]), pgrp: atoi(f[2])}
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			p.ticks += n
		}
		procs[pid] = p
	}
	isRoot := map[int]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	var ticks int64
	for pid, p := range procs {
		in := isRoot[pid] || isRoot[p.pgrp]
		for a, depth := p.ppid, 0; !in && a > 1 && depth < 64; depth++ {
			in = isRoot[a]
			a = procs[a].ppid
		}
		if in {
			ticks += p.ticks
		}
	}
	return time.Duration(ticks) * clockTick
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// idleCPU is what the daemons use per second with nothing to scan.
func idleCPU(daemons []int, d time.Duration) time.Duration {
	before := treeCPU(daemons...)
	time.Sleep(d)
	return time.Duration(float64(treeCPU(daemons...)-before) / d.Seconds())
}

// loadavg is /proc/loadavg's three load averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// selfCPU is the CPU this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
