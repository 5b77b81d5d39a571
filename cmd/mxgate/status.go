package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/node"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show one node at a glance: role, uptime, load, store, downstream, engines",
		Long: `Show the node behind --admin, single or clustered: its id, version and role
(single, master, backup), how long it has run, whether it is healthy (as
/healthz says), the SMTP connections open, the scans running and waiting,
the store (embedded or redis) and whether it answers, whether the
downstream server takes connections, each outside engine and whether it
answers, the list entries and the cluster configuration revision applied,
and on a cluster node the cluster in one line (` + "`mxgate cluster status`" + ` has
the rest). The store and downstream are checked for this request. The
status is 0 whenever the node answered, healthy or not: monitor /healthz.

` + adminHelp,
		Example: `  mxgate status
  mxgate -c /etc/mxgate/mxgate.yaml status
  mxgate status --admin 198.18.0.12:8025 --json`,
		Args: noArgs,
	}
	adminFlags(cmd)
	asJSON := jsonFlag(cmd, "the status as one JSON object")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		var st node.StatusView
		if err := c.Status(cmd.Context(), &st); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(cmd.OutOrStdout(), st)
		}
		return printStatus(cmd.OutOrStdout(), st)
	})
	return cmd
}

func printStatus(w io.Writer, st node.StatusView) error {
	t := newTable(w)
	t.row("NODE", clean(st.Node))
	t.row("VERSION", fmt.Sprintf("%s, commit %s, %s", clean(st.Version), clean(st.Commit), clean(st.GoVersion)))
	t.row("ROLE", clean(st.Role))
	t.row("UPTIME", fmt.Sprintf("%s (since %s)", clean(st.Uptime), when(st.Started)))
	health := "ok"
	if !st.Healthy {
		health = "UNHEALTHY: " + st.Health
	}
	t.row("HEALTH", health)
	t.row("SMTP", fmt.Sprintf("%d connection(s) open", st.SMTPConnections))
	t.row("SCANNER", fmt.Sprintf("%d of %d scanning, %d of %d waiting", st.ScannerBusy, st.ScannerWorkers, st.ScannerQueued, st.ScannerQueue))
	// The embedded store's name says its kind already ("embedded PATH").
	name := strings.TrimPrefix(st.Store.Name, st.Store.Kind+" ")
	store := fmt.Sprintf("%s %s: %s", clean(st.Store.Kind), clean(name), okOr(st.Store.OK, st.Store.Error))
	if st.Degraded {
		store += "; DEGRADED: running on the last good lists and settings"
	}
	t.row("STORE", store)
	t.row("DOWNSTREAM", fmt.Sprintf("%s: %s", clean(st.Downstream.Address), okOr(st.Downstream.OK, st.Downstream.Error)))
	t.row("ENGINES", engineStates(st))
	t.row("LISTS", fmt.Sprintf("%d entries", st.Lists))
	t.row("CONFIG", fmt.Sprintf("revision %d applied", st.ConfigRevision))
	if cl := st.Cluster; cl != nil {
		vip := "not held"
		if cl.VIPHeld {
			vip = "held"
		}
		master := "none heard"
		if cl.Master != "" {
			master = clean(cl.Master)
		}
		t.row("CLUSTER", fmt.Sprintf("%s, VIP %s %s, master %s, %d member(s), %d healthy", clean(cl.Mode), clean(cl.VIP), vip, master, cl.Members, cl.MembersHealthy))
		// Several virtual routers: one line each, the first one's above.
		for _, in := range cl.Instances {
			held, master := "not held", "none heard"
			if in.VIPHeld {
				held = "held"
			}
			if in.Master != "" {
				master = clean(in.Master)
			}
			t.row("", fmt.Sprintf("VRID %d %s, VIP %s %s, master %s", in.VRID, clean(in.State), clean(in.VIP), held, master))
		}
	}
	return t.flush()
}

// okOr says ok, or DOWN with why.
func okOr(ok bool, why string) string {
	if ok {
		return "ok"
	}
	return "DOWN: " + why
}

// engineStates lists the outside engines, one "name ok" or "name DOWN
// (kind, on_error …)" each.
func engineStates(st node.StatusView) string {
	if len(st.Engines) == 0 {
		return "none (built-in checks only)"
	}
	parts := make([]string, 0, len(st.Engines))
	for _, e := range st.Engines {
		s := clean(e.Name) + " ok"
		if e.Down != "" {
			s = fmt.Sprintf("%s DOWN (%s; on_error %s)", clean(e.Name), clean(e.Down), clean(e.OnError))
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
