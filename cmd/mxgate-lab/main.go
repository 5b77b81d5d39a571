// Command mxgate-lab runs the lab: three mxgate nodes with a VIP, Redis,
// the organisation's mail server and a client, each in a network namespace
// of one Linux host, the same topology as the docker-compose lab. It is
// what `make lab`, `make lab-status` and `make lab-down` run; it needs root.
//
//	mxgate-lab up     [-name mxlab] [-state /run/mxgate-lab] [-bin bin/mxgate] [-bare] [-ipv6]
//	mxgate-lab status [-name mxlab] [-state /run/mxgate-lab]
//	mxgate-lab down   [-name mxlab] [-state /run/mxgate-lab]
//
// The processes run in sessions of their own and outlive the command; their
// PIDs, start times and command lines are kept in STATE/NAME/lab.json, and
// down stops exactly those, then whatever else runs in the lab's
// namespaces, deletes the namespaces and the state directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: mxgate-lab up|status|down [-name NAME] [-state DIR] [-bin MXGATE] [-bare] [-ipv6]

  up      build the lab and start its processes; prints how to reach each part
          (-bare: only the switch, the three node namespaces and the client,
          nothing started: for scripts that run their own processes;
          -ipv6: IPv6 on the segment too, fd00:198:18::(10+i)/64 and link-local)
  status  what runs, who holds the VIP, and how to reach each part
  down    stop the lab's processes and remove its namespaces and state (idempotent)
`

// options name a lab and where its state lives.
type options struct {
	name  string // namespace prefix
	state string // parent of the lab's state directory
	bin   string // the mxgate binary (up)
	bare  bool   // up: the namespaces only
	ipv6  bool   // up: IPv6 on the segment too (lab.EnableIPv6)
}

func (o options) dir() string { return o.state + "/" + o.name }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mxgate-lab:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("mxgate-lab "+verb, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	var o options
	fs.StringVar(&o.name, "name", "mxlab", "the lab's name: prefix of its namespaces")
	fs.StringVar(&o.state, "state", "/run/mxgate-lab", "where the lab's state directory is made")
	fs.StringVar(&o.bin, "bin", "bin/mxgate", "the mxgate binary the nodes run")
	fs.BoolVar(&o.bare, "bare", false, "up: build the namespaces only, start nothing")
	fs.BoolVar(&o.ipv6, "ipv6", false, "up: IPv6 on the segment too")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprint(os.Stderr, usage)
		return errUsage
	}
	if err := checkName(o.name); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, port 25): run it with sudo")
	}
	switch verb {
	case "up":
		return up(ctx, o, out)
	case "status":
		return status(o, out)
	case "down":
		return down(ctx, o, out)
	}
	fmt.Fprint(os.Stderr, usage)
	return errUsage
}

// checkName keeps names to what package lab accepts and away from the
// names the tests use (mxl<digits>...).
func checkName(name string) error {
	if len(name) < 2 || len(name) > 20 {
		return fmt.Errorf("lab name %q: want 2..20 letters or digits", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("lab name %q: want lower-case letters or digits", name)
		}
	}
	return nil
}
