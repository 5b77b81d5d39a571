package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/report"
)

// OrphanGrace is how long a session on a released VIP may wait for its
// client during a stop: one whose ARP cache has not moved yet answers
// within it.
const OrphanGrace = 2 * time.Second

// Start binds every port first (a busy one fails the start with its key
// named, and nothing is served), then serves SMTP and the admin API, runs
// the background work and, in a cluster, the peer API, the membership and
// the VRRP node, and returns. A start that fails, or that ctx ends first
// (the error then wraps ctx.Err()), returns an error; Stop then ends what
// it had started. Start a node once.
func (n *Node) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding the ports: %w", err)
	}
	ports, err := bindPorts(ctx, n.cfg, n.cluster.peer != nil)
	if err != nil {
		return err
	}
	n.ports, n.started = ports, time.Now()
	if ports.admin != nil {
		n.adminAddr = ports.admin.Addr()
	}
	// The listeners come first: they bind the VIP before it is held
	// (IP_FREEBIND), so SMTP answers the moment this node becomes master.
	if err := n.front.Start(); err != nil {
		return fmt.Errorf("smtp.listen: %w", err)
	}
	n.serving = true
	n.run(ports)
	if n.stopVRRP, err = runVRRP(ctx, n.cluster.node, n.fail, n.log); err != nil {
		return err
	}
	n.log.Info("mxgate node started", "node", n.cfg.Node.ID, "smtp", n.cfg.SMTP.Listen, "admin", n.cfg.Admin.Listen, "downstream", n.cfg.Downstream.Address, "data_dir", n.cfg.Node.DataDir, "store", n.store.Name)
	return nil
}

// run starts the node's goroutines; each ends when Stop cancels their
// context, which is not Start's: they serve on while the sessions drain.
func (n *Node) run(ports *boundPorts) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopRun = cancel
	n.wg.Go(func() { n.lists.Run(ctx, 5*time.Second) })
	n.wg.Go(func() { n.follower.Run(ctx) })
	n.wg.Go(func() { pingEngines(ctx, n.pool, enginePingInterval) })
	n.wg.Go(func() { expireLoop(ctx, n.store, n.cfg.Store.LogRetention.Duration, n.log) })
	n.wg.Go(func() {
		report.RunScheduler(ctx, n.store.Reports, n.store.Log, n.cfg.Node.ID, n.cluster.isMaster, n.reportMail, time.Now, n.log)
	})
	n.wg.Go(func() { digest.RunScheduler(ctx, n.digest, n.cluster.isMaster) })
	if n.admin != nil {
		ln := ports.take(&ports.admin)
		n.wg.Go(func() {
			if err := n.admin.Serve(ctx, ln); err != nil {
				n.fail(fmt.Errorf("admin: %w", err))
			}
		})
	}
	n.cluster.start(ctx, &n.wg, n.fail, ports.take(&ports.peer))
}

// reportMail is how the daily report is mailed under the cluster's
// settings now: through the downstream server, as releases go, from
// reports.mail_from or postmaster@smtp.hostname.
func (n *Node) reportMail() report.MailSettings {
	r := n.shared.v.Load().Reports
	return report.MailSettings{
		To:         r.MailTo,
		From:       n.sender(r.MailFrom),
		Name:       n.cfg.SMTP.Hostname + "/" + n.cfg.Node.ID,
		Downstream: downstream(n.cfg),
	}
}

// sender is from, or postmaster@smtp.hostname when it is "": who the
// gateway's own mail (reports, digests) comes from.
func (n *Node) sender(from string) string {
	if from == "" {
		return "postmaster@" + n.cfg.SMTP.Hostname
	}
	return from
}

// digestSettings are the recipients' digest under the cluster's settings
// now, sent as report mail is; links live as long as the quarantine
// keeps the messages.
func (n *Node) digestSettings() digest.Settings {
	d := n.shared.v.Load().Digest
	at, err := d.At()
	if err != nil {
		// Validated before it was stored: only a future key's value.
		at, _ = (config.Digest{}).At()
	}
	return digest.Settings{
		Enabled:    d.Enabled,
		At:         at,
		URL:        d.URL,
		From:       n.sender(d.From),
		Domains:    d.Domains,
		Lifetime:   n.cfg.Store.QuarantineRetention.Duration,
		Downstream: downstream(n.cfg),
	}
}

// Stop stops the node in order: peers stop sending scans here first, then
// a master hands over (priority 0: the backups take over after Skew_Time,
// not three intervals) and lets go of the VIP; sessions already open then
// finish within smtp.drain_timeout (or until ctx ends); then the
// background work, the scanners and the store stop. Call it after Build
// succeeded, whatever Start returned; calls after the first do nothing.
func (n *Node) Stop(ctx context.Context) {
	n.stopOnce.Do(func() { n.stop(ctx) })
}

func (n *Node) stop(ctx context.Context) {
	if n.stopRun != nil {
		n.cluster.drain(ctx)
	}
	if n.stopVRRP != nil {
		n.stopVRRP()
		// Sessions on the VIP now have their clients' packets delivered
		// to the new master; they finish what they are doing, but waiting
		// for their clients would only hold up the stop.
		for _, vip := range vipAddrs(n.cfg) {
			if c := n.front.Orphan(vip, OrphanGrace); c > 0 {
				n.log.Info("sessions on the released VIP wait at most "+OrphanGrace.String()+" for their clients", "vip", vip, "sessions", c)
			}
		}
	}
	if n.serving {
		n.log.Info("stopping: draining sessions", "drain_timeout", n.cfg.SMTP.DrainTimeout.Duration)
	}
	n.shutdownFront(ctx)
	if n.stopRun != nil {
		n.stopRun()
		n.wg.Wait()
	}
	n.release()
	n.log.Info("stopped")
}

// shutdownFront drains the sessions within smtp.drain_timeout; the message
// log's journal then writes to the store what it takes.
func (n *Node) shutdownFront(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SMTP.DrainTimeout.Duration)
	defer cancel()
	n.front.Shutdown(ctx)
}

// release closes what Build opened and the ports Start did not hand out;
// every part may be missing (a failed Build).
func (n *Node) release() {
	if n.ports != nil {
		n.ports.close()
	}
	if n.front != nil {
		n.shutdownFront(context.Background()) // at once when done before
	}
	if n.pool != nil {
		n.pool.Close()
	}
	n.store.Close()
}

// runVRRP starts the VRRP node and waits until it listens for adverts (or
// ctx ends). A node that cannot open its socket or find its interface fails
// the start; one that stops by itself later is reported to fail. The
// returned stop hands over and waits for the node to end.
func runVRRP(ctx context.Context, node *cluster.Node, fail func(error), log *slog.Logger) (stop func(), err error) {
	if node == nil {
		return nil, nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()
	select {
	case <-node.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("cluster: %w", err)
	case <-ctx.Done():
		cancel()
		<-done
		return nil, fmt.Errorf("starting the cluster node: %w", ctx.Err())
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := <-done; err != nil && runCtx.Err() == nil {
			log.Error("cluster node stopped", "err", err)
			fail(fmt.Errorf("cluster: %w", err))
		}
	}()
	return func() { cancel(); <-ended }, nil
}
