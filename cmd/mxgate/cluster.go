package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/node"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the node's VRRP cluster state",
		Long: `Show a node's VRRP state through its admin API. Every node answers for
itself: --admin names the node. A single node has no cluster state: use
` + "`mxgate status`" + `.

` + adminHelp,
		Example: "  mxgate cluster status --json",
		RunE:    groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newClusterStatusCmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "This node's VRRP state, the scanning members and the applied config revision",
		Long: `Show the VRRP state of the node behind --admin: its state (master, backup,
init), priority, the master it hears (address, priority, advert interval),
Master_Down_Interval, how long it has been in its state, whether it holds the
VIP, and the adverts sent, received and dropped (by reason: ttl, checksum,
vrid, version, type, short, addr_count, interval, own_address, source,
family). Then whether the shared store answers, the cluster configuration
revision this node applied, and the scanning members it dispatches to (id,
peer address, weight, health, load, role, revision, last heartbeat). Ask each
node's own admin API to compare them.

--watch redraws the view every --interval (default 1s) until Ctrl-C, like
watch(1): on a terminal in place, with the time; otherwise one block per
poll under a timestamp line, for a log; with --json one JSON object per
line. A node that does not answer is shown as such and polled again: the
watch goes on through a failover. A refused token ends it.`,
		Example: `  mxgate cluster status
  mxgate cluster status --admin 198.18.0.12:8025 --json
  mxgate cluster status --watch --interval 500ms`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "the status as one JSON object")
	watch := watchFlags(cmd)
	run := withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		if watch.on {
			return watchCluster(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), watch.interval, *asJSON)
		}
		var st node.ClusterView
		if err := c.ClusterStatus(cmd.Context(), &st); err != nil {
			return notClustered(err)
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, st)
		}
		return printClusterView(out, st)
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := watch.check(cmd); err != nil {
			return err
		}
		return run(cmd, args)
	}
	return cmd
}

// printClusterView is the table of cluster status: the state, a blank
// line, the members.
func printClusterView(w io.Writer, st node.ClusterView) error {
	if err := printClusterState(w, st); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printMembers(w, st)
}

func printClusterState(w io.Writer, st node.ClusterView) error {
	t := newTable(w)
	t.row("NODE", clean(st.Node))
	t.row("STATE", fmt.Sprintf("%s for %s (since %s)", clean(st.State), time.Since(st.Since).Round(time.Millisecond), when(st.Since)))
	start := ""
	if st.StartState != "" { // a node older than start_state does not say
		start = "start as " + clean(st.StartState) + ", "
	}
	prio := fmt.Sprint(st.Priority)
	if st.EffectivePriority != 0 && st.EffectivePriority != st.Priority { // 0: a node from before tracking
		prio += fmt.Sprintf(", advertising %d while tracked checks fail", st.EffectivePriority)
	}
	t.row("PRIORITY", fmt.Sprintf("%s (%spreempt %s)", prio, start, onOff(st.Preempt)))
	if len(st.Track) > 0 {
		t.row("TRACK", trackStates(st.Track))
	}
	t.row("VRID", fmt.Sprint(st.VRID))
	vip := "not held"
	if st.VIPHeld {
		vip = "held"
	}
	t.row("VIP", fmt.Sprintf("%s on %s, %s", clean(st.VIP), clean(st.Interface), vip))
	t.row("SOURCE", fmt.Sprintf("%s (%s)", clean(st.Source), clean(st.Mode)))
	master := "none heard"
	if st.MasterAddr != "" {
		master = fmt.Sprintf("%s priority %d", clean(st.MasterAddr), st.MasterPriority)
	}
	t.row("MASTER", master)
	t.row("ADVERT INTERVAL", fmt.Sprintf("%s (master's %s, master down after %s)", clean(st.AdvertInterval), clean(st.MasterInterval), clean(st.MasterDown)))
	t.row("ADVERTS", fmt.Sprintf("sent %d, received %d, dropped %s", st.AdvertsSent, st.AdvertsRecv, drops(st.Dropped)))
	t.row("TRANSITIONS", fmt.Sprint(st.Transitions))
	// Several virtual routers: the rows above are the first one's (the
	// node's role); each has a line here.
	if len(st.Instances) > 1 {
		for _, in := range st.Instances {
			held, master := "not held", "none heard"
			if in.VIPHeld {
				held = "held"
			}
			if in.MasterAddr != "" {
				master = fmt.Sprintf("%s priority %d", clean(in.MasterAddr), in.MasterPriority)
			}
			prio := fmt.Sprint(in.Priority)
			if in.EffectivePriority != 0 && in.EffectivePriority != in.Priority {
				prio += fmt.Sprintf(" advertising %d", in.EffectivePriority)
			}
			t.row(fmt.Sprintf("VRID %d", in.VRID), fmt.Sprintf("%s, priority %s (preempt %s), VIP %s %s, master %s, sent %d, received %d",
				clean(in.State), prio, onOff(in.Preempt), clean(in.VIP), held, master, in.AdvertsSent, in.AdvertsRecv))
		}
	}
	state := "ok"
	if st.Degraded {
		state = "DEGRADED: the shared store does not answer (last good lists and settings, static peers)"
	}
	t.row("STORE", state)
	t.row("CONFIG", fmt.Sprintf("revision %d applied, mode %s", st.Revision, clean(st.Mode)))
	return t.flush()
}

// trackStates lists the tracked checks: "name ok (weight -150)" or "name
// FAILING (fault): why".
func trackStates(ts []cluster.TrackStatus) string {
	var out []string
	for _, tr := range ts {
		how := "fault"
		if !tr.Fault {
			how = fmt.Sprintf("weight %d", tr.Weight)
		}
		s := fmt.Sprintf("%s ok (%s)", clean(tr.Check), how)
		if tr.Failing {
			s = fmt.Sprintf("%s FAILING (%s): %s", clean(tr.Check), how, clean(tr.Error))
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func printMembers(w io.Writer, st node.ClusterView) error {
	t := newTable(w, "MEMBER", "PEER ADDRESS", "WEIGHT", "HEALTH", "LOAD", "ROLE", "REVISION", "SEEN")
	row := func(m members.Member, health string) {
		seen := "static"
		if !m.Seen.IsZero() {
			seen = time.Since(m.Seen).Round(time.Millisecond).String() + " ago"
		}
		t.row(clean(m.ID), clean(m.PeerAddr), fmt.Sprint(m.Weight), health, fmt.Sprintf("%d/%d", m.Busy, m.Workers), clean(m.Role()), fmt.Sprint(m.Revision), seen)
	}
	for _, m := range st.Members {
		health := "ok"
		switch {
		case !m.Healthy && len(m.Down) > 0:
			health = "down: " + clean(strings.Join(m.Down, ", "))
		case !m.Healthy:
			health = "draining"
		}
		row(m, health)
	}
	// A node that stopped is shown as it last described itself, so that
	// its absence is seen rather than missed.
	for _, m := range st.Gone {
		row(m, "gone (no heartbeat)")
	}
	return t.flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// drops lists the non-zero drop counters by reason, in a stable order.
func drops(m map[string]uint64) string {
	var total uint64
	var parts []string
	for r, n := range m {
		if n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s=%d", clean(r), n))
		}
	}
	if total == 0 {
		return "0"
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}

// notClustered says what to use instead when the node is not clustered
// (its 404), keeping the status.
func notClustered(err error) error {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "clustering is not enabled") {
		return &admin.Error{Status: ae.Status, Message: "not a cluster node (cluster.enabled: false): use mxgate status"}
	}
	return err
}
