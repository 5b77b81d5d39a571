// Package cluster runs one VRRPv3 virtual router on Linux: the raw protocol-112
// transport, the virtual IP (netlink + gratuitous ARP), the notify hook and
// metrics around the pure state machine of package cluster/vrrp.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/cluster/vrrp"
)

// Options configures one Node. Zero values of the optional fields mean what
// their comments say.
type Options struct {
	Interface    string
	VRID         uint8
	VIP          netip.Prefix // e.g. 198.18.0.100/24; added with this prefix, label "<if>:vip" if it fits 15 chars
	Priority     uint8
	Interval     time.Duration
	Preempt      bool
	PreemptDelay time.Duration
	Source       netip.Addr   // primary address; zero = the first IPv4 address on Interface that is not the VIP
	UnicastPeers []netip.Addr // empty = multicast 224.0.0.18; non-empty = unicast to each + source allow-list
	Checksum     vrrp.ChecksumMode
	GARPRepeat   int           // gratuitous ARPs on becoming master (0 = default 5)
	GARPRefresh  time.Duration // delay of the second burst (0 = none; the config layer defaults it to 5s)
	// GARPMasterRefresh repeats one gratuitous ARP this often while master
	// (0 = never), like keepalived's garp_master_refresh: after a partition
	// healed behind links that stayed up, the backup that held the VIP may
	// step down without a word, and clients' ARP caches then follow us at
	// the next refresh rather than when their entry expires.
	GARPMasterRefresh time.Duration
	Notify            string // command + fixed args, run as: Notify... <state> <vrid> <priority>, in order, one at a time
	// Track lists what the node's service depends on (see Track); the
	// interface's link is tracked only if listed (an item with no Check).
	Track      []Track
	NodeID     string       // "" = host name
	Logger     *slog.Logger // nil = slog.Default()
	Registerer prometheus.Registerer
}

const (
	defaultGARPRepeat = 5
	// garpGap spaces the GARPs of one burst: a switch or a busy receiver that
	// misses one still gets the next (keepalived sends its burst back to back).
	garpGap = 10 * time.Millisecond
	// notifyDrain bounds how long Run waits for queued notify commands on exit.
	notifyDrain = 10 * time.Second
)

// Node is one VRRP virtual router instance on one interface.
type Node struct {
	opt    Options
	log    *slog.Logger
	ifi    *net.Interface
	src    netip.Addr
	h      *netlink.Handle
	vip    *vip
	filter vrrp.Filter
	m      *vrrp.Machine
	met    *metrics

	ready   chan struct{}
	runOnce sync.Once
	shared  shared
	// linkUp is the interface's link as netlink last reported it (running);
	// written by the link watcher, read by the machine goroutine.
	linkUp atomic.Bool
}

// New validates o, resolves the interface and the source address in the
// calling thread's network namespace and opens a netlink handle there, so a
// Node created on a thread switched into a namespace keeps working in it.
// Run must be called from the same namespace (it opens the sockets).
func New(o Options) (*Node, error) {
	if o.Interface == "" {
		return nil, errors.New("cluster: interface is required")
	}
	if !o.VIP.IsValid() || !o.VIP.Addr().Is4() {
		return nil, fmt.Errorf("cluster: VIP %q must be an IPv4 prefix such as 198.18.0.100/24", o.VIP)
	}
	o.VIP = netip.PrefixFrom(o.VIP.Addr(), o.VIP.Bits()) // keep the address, not the masked network
	if o.Source.IsValid() {
		o.Source = o.Source.Unmap()
		if !o.Source.Is4() {
			return nil, fmt.Errorf("cluster: source %s is not IPv4", o.Source)
		}
		if o.Source == o.VIP.Addr() {
			return nil, fmt.Errorf("cluster: source %s must not be the VIP", o.Source)
		}
	}
	peers := make([]netip.Addr, 0, len(o.UnicastPeers))
	for _, p := range o.UnicastPeers {
		p = p.Unmap()
		if !p.Is4() {
			return nil, fmt.Errorf("cluster: unicast peer %s is not IPv4", p)
		}
		peers = append(peers, p)
	}
	o.UnicastPeers = peers
	switch o.Checksum {
	case vrrp.ChecksumPseudoHeader, vrrp.ChecksumMessageOnly:
	default:
		return nil, fmt.Errorf("cluster: unknown checksum mode %d", o.Checksum)
	}
	if o.GARPRepeat < 0 || o.GARPRefresh < 0 || o.GARPMasterRefresh < 0 || o.PreemptDelay < 0 {
		return nil, errors.New("cluster: garp_repeat, garp_refresh and preempt_delay must not be negative")
	}
	if o.GARPRepeat == 0 {
		o.GARPRepeat = defaultGARPRepeat
	}
	if err := validateTracks(o.Track); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.NodeID == "" {
		o.NodeID, _ = os.Hostname()
	}

	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("cluster: interface %q: %w", o.Interface, err)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("cluster: open netlink: %w", err)
	}
	n, err := newNode(o, ifi, h)
	if err != nil {
		h.Close()
		return nil, err
	}
	return n, nil
}

func newNode(o Options, ifi *net.Interface, h *netlink.Handle) (*Node, error) {
	link, err := h.LinkByIndex(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("cluster: netlink link %q: %w", o.Interface, err)
	}
	src := o.Source
	if !src.IsValid() {
		if src, err = firstIPv4(h, link, o.VIP.Addr()); err != nil {
			return nil, err
		}
	}
	m, err := vrrp.New(vrrp.Config{
		VRID:         o.VRID,
		Priority:     o.Priority,
		Interval:     o.Interval,
		Preempt:      o.Preempt,
		PreemptDelay: o.PreemptDelay,
		Primary:      src,
		VIPs:         []netip.Addr{o.VIP.Addr()},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	met.priority.Set(float64(o.Priority))
	for _, t := range o.Track {
		met.trackFailing.WithLabelValues(t.Name).Set(0)
	}
	n := &Node{
		opt: o,
		log: o.Logger,
		ifi: ifi,
		src: src,
		h:   h,
		vip: newVIP(h, link, o.VIP),
		filter: vrrp.Filter{
			VRID: o.VRID,
			// Packets from these are our own, looped back or reflected.
			Own:     []netip.Addr{src, o.VIP.Addr()},
			Allowed: o.UnicastPeers,
		},
		m:     m,
		met:   met,
		ready: make(chan struct{}),
	}
	n.shared.dropped = make(map[string]uint64)
	n.shared.priority = o.Priority
	n.shared.track = newTracking(o.Track).status()
	return n, nil
}

// firstIPv4 picks the interface's first IPv4 address that is not the VIP: a
// VIP left behind by a crashed predecessor may well be listed first.
func firstIPv4(h *netlink.Handle, link netlink.Link, vipAddr netip.Addr) (netip.Addr, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return netip.Addr{}, fmt.Errorf("cluster: list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ip = ip.Unmap(); ok && ip.Is4() && ip != vipAddr {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("cluster: no IPv4 address on %s other than the VIP; set the source address", link.Attrs().Name)
}

// Ready is closed when the transport is open and the machine started.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Run removes a stale VIP, opens the sockets (in the calling thread's
// namespace), starts the machine and runs until ctx ends. Then it stops
// gracefully: a master sends an advert with priority 0 so a backup takes
// over after Skew_Time, the VIP is removed, the sockets closed and the
// queued notify commands run (bounded). It returns after all its goroutines
// ended; setup errors are returned at once. A Node runs once.
func (n *Node) Run(ctx context.Context) error {
	first := false
	n.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("cluster: Node.Run called twice")
	}
	defer n.h.Close()

	// A node killed with -9 leaves its VIP behind; holding it while backup
	// would answer ARP for it next to the real master.
	if err := n.vip.remove(); err != nil {
		return fmt.Errorf("cluster: remove stale VIP: %w", err)
	}
	tr, err := openTransport(n.ifi, n.src, n.opt.UnicastPeers, n.opt.Checksum)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	g, err := openGARP(n.ifi, n.opt.VIP.Addr())
	if err != nil {
		tr.close()
		return fmt.Errorf("cluster: %w", err)
	}

	nt := newNotifier(n.opt.Notify, n.log)
	notifyCtx, stopNotify := context.WithCancelCause(context.Background())
	defer stopNotify(nil)
	var wg sync.WaitGroup
	if len(nt.argv) > 0 {
		wg.Go(func() { nt.run(notifyCtx) })
	} else {
		close(nt.done)
	}

	rx := make(chan received, 64)
	stopRx := make(chan struct{})
	wg.Go(func() { n.receive(tr, rx, stopRx) })

	// A master cut off by its link kept the VIP while a backup took it too.
	// When the link returns, the backup may hear us first and step down
	// without a word, so we would never hear a lower priority to answer with
	// gratuitous ARP: the clients' ARP caches would keep pointing at the
	// backup. The link coming up is our cue to announce again.
	updates := make(chan netlink.LinkUpdate, 16)
	stopLinks := make(chan struct{})
	var linksStopping atomic.Bool // closing the subscription makes its read fail: not worth a warning
	if err := netlink.LinkSubscribeWithOptions(updates, stopLinks, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if !linksStopping.Load() {
				n.log.Warn("vrrp: link updates", "interface", n.ifi.Name, "err", err)
			}
		},
	}); err != nil {
		close(stopRx)
		tr.close()
		g.close()
		nt.close()
		stopNotify(nil)
		wg.Wait()
		return fmt.Errorf("cluster: watch link %s: %w", n.ifi.Name, err)
	}
	// Read after subscribing: a change in between shows up as an update.
	if link, err := n.h.LinkByIndex(n.ifi.Index); err == nil {
		n.linkUp.Store(link.Attrs().RawFlags&unix.IFF_RUNNING != 0)
	} else {
		n.linkUp.Store(true)
		n.log.Warn("vrrp: read link state", "interface", n.ifi.Name, "err", err)
	}
	linkChanged := make(chan struct{}, 1)
	wg.Go(func() { n.watchLink(updates, linkChanged) })

	// The polled tracked items, stopped with the loop.
	trackCtx, stopTracks := context.WithCancel(ctx)
	tracked := make(chan trackResult, len(n.opt.Track))
	var trackWG sync.WaitGroup
	for i, t := range n.opt.Track {
		if t.Check != nil {
			trackWG.Go(func() { poll(trackCtx, i, t, tracked) })
		}
	}

	n.log.Info("vrrp starting", "vrid", n.opt.VRID, "interface", n.ifi.Name, "src_addr", n.src, "vip", n.opt.VIP,
		"priority", n.opt.Priority, "interval", n.opt.Interval, "transport", n.Status().Mode)
	l := loop{n: n, tr: tr, g: g, nt: nt, linkChanged: linkChanged, tracked: tracked, track: newTracking(n.opt.Track)}
	l.run(ctx, rx)
	stopTracks()
	trackWG.Wait()

	// Stop the receiver: closing the socket ends its blocking read. The
	// link watcher ends when netlink closes its channel.
	linksStopping.Store(true)
	close(stopLinks)
	close(stopRx)
	tr.close()
	g.close()
	// Belt and braces: whatever the machine did, a stopped node holds no VIP.
	if err := n.vip.remove(); err != nil {
		n.log.Error("vrrp: remove VIP on exit", "err", err)
	}
	n.setVIPHeld(false)

	nt.close()
	select {
	case <-nt.done:
	case <-time.After(notifyDrain):
		stopNotify(fmt.Errorf("notify queue not drained within %s", notifyDrain))
	}
	wg.Wait()
	n.log.Info("vrrp stopped", "vrid", n.opt.VRID)
	return nil
}

// receive reads packets, filters them and hands accepted adverts to the
// machine goroutine. Drops are counted here.
func (n *Node) receive(tr *transport, out chan<- received, stop <-chan struct{}) {
	buf := make([]byte, 1500)
	var lastErr time.Time
	for {
		r, ok, err := tr.recv(buf)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (ENOBUFS and the like): log at most once a second.
			if time.Since(lastErr) > time.Second {
				n.log.Warn("vrrp receive", "err", err)
				lastErr = time.Now()
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !ok {
			continue
		}
		a, reason := n.filter.Accept(r)
		if reason != "" {
			n.met.dropped.WithLabelValues(string(reason)).Inc()
			n.shared.add(func(s *shared) { s.dropped[string(reason)]++ })
			n.log.Debug("vrrp drop", "reason", reason, "src", r.Src, "dst", r.Dst, "ttl", r.TTL, "len", len(r.Payload))
			continue
		}
		n.met.received.Inc()
		n.shared.add(func(s *shared) { s.recv++ })
		select {
		case out <- received{src: r.Src, advert: a}:
		case <-stop:
			return
		}
	}
}

// watchLink keeps n.linkUp current and signals changed each time the
// interface's link (running) changes. It ends when updates is closed.
func (n *Node) watchLink(updates <-chan netlink.LinkUpdate, changed chan<- struct{}) {
	for u := range updates {
		if u.Attrs() == nil || u.Attrs().Index != n.ifi.Index {
			continue
		}
		isUp := u.Attrs().RawFlags&unix.IFF_RUNNING != 0
		if n.linkUp.Swap(isUp) == isUp {
			continue
		}
		n.log.Info("vrrp: interface link changed", "interface", n.ifi.Name, "up", isUp)
		select {
		case changed <- struct{}{}:
		default: // one pending signal is enough: the loop reads n.linkUp
		}
	}
}

func (n *Node) setVIPHeld(b bool) {
	n.shared.add(func(s *shared) { s.vipHeld = b })
	n.met.vipHeld.Set(boolGauge(b))
}

// received is one accepted advert on its way to the machine goroutine.
type received struct {
	src    netip.Addr
	advert vrrp.Advert
}

// loop is the machine goroutine's state: it alone touches the Machine, the
// sockets' send side and the GARP schedule, so none of it needs a lock.
type loop struct {
	n  *Node
	tr *transport
	g  *garp
	nt *notifier
	// linkChanged: n.linkUp changed. tracked: a polled item's verdict changed.
	linkChanged <-chan struct{}
	tracked     <-chan trackResult
	track       *tracking
	linkWasUp   bool

	garpLeft  int       // GARPs still to send in the current burst
	garpNext  time.Time // when the next one of the burst is due
	refreshAt time.Time // second burst; zero = none pending
	periodAt  time.Time // next periodic GARP while master; zero = none

	sendErrAt  time.Time // last logged send error (rate limit)
	vipFailing bool      // last VIP add failed (log once, retry on each advert)
}

func (l *loop) run(ctx context.Context, rx <-chan received) {
	m := l.n.m
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// A link down at start means Start enters Fault (when it is tracked).
	l.linkWasUp = l.n.linkUp.Load()
	l.setLink(l.linkWasUp)
	l.applyTrack(time.Now())
	l.exec(time.Now(), m.Start(time.Now()))
	l.n.shared.snapshot(m)
	close(l.n.ready)
	for {
		l.arm(timer)
		select {
		case <-ctx.Done():
			l.exec(time.Now(), m.Shutdown(time.Now()))
			l.n.shared.snapshot(m)
			return
		case r := <-rx:
			now := time.Now()
			l.exec(now, m.Receive(now, r.src, r.advert))
		case <-l.linkChanged:
			now := time.Now()
			up := l.n.linkUp.Load()
			l.setLink(up)
			l.applyTrack(now)
			if up && !l.linkWasUp && m.State() == vrrp.Master {
				// Only with the link untracked: a tracked one made us leave.
				l.n.log.Info("vrrp: link up again as master, announcing", "vip", l.n.opt.VIP)
				l.sendAdvert(now, m.Priority())
				l.startBurst(now)
			}
			l.linkWasUp = up
		case r := <-l.tracked:
			l.track.failing[r.i], l.track.errs[r.i] = r.failing, r.err
			it := l.track.items[r.i]
			if r.failing {
				l.n.log.Warn("vrrp: tracked check failing", "check", it.Name, "weight", it.Weight, "fault", it.Fault, "err", r.err)
			} else {
				l.n.log.Info("vrrp: tracked check recovered", "check", it.Name)
			}
			l.applyTrack(time.Now())
		case <-timer.C:
			// One timer serves the machine and the GARP schedule; Tick with
			// nothing due is a no-op.
			now := time.Now()
			l.exec(now, m.Tick(now))
			l.garpDue(now)
		}
		l.n.shared.snapshot(m)
	}
}

// arm points the timer at the earliest of the machine's deadline and the
// GARP schedule. With Go ≥1.23 timers, Reset discards a pending fire.
func (l *loop) arm(t *time.Timer) {
	var next time.Time
	earliest := func(x time.Time) {
		if !x.IsZero() && (next.IsZero() || x.Before(next)) {
			next = x
		}
	}
	earliest(l.n.m.Deadline())
	if l.garpLeft > 0 {
		earliest(l.garpNext)
	}
	earliest(l.refreshAt)
	earliest(l.periodAt)
	if next.IsZero() {
		t.Stop()
		return
	}
	t.Reset(time.Until(next))
}

// exec carries out the machine's actions in the order given.
func (l *loop) exec(now time.Time, acts []vrrp.Action) {
	n := l.n
	for _, a := range acts {
		switch a.Kind {
		case vrrp.SendAdvert:
			l.sendAdvert(now, a.Priority)
		case vrrp.AddVIP:
			l.addVIP()
		case vrrp.DelVIP:
			// Leaving master: a pending GARP would claim the address for us.
			l.garpLeft, l.refreshAt, l.periodAt = 0, time.Time{}, time.Time{}
			if err := n.vip.remove(); err != nil {
				n.log.Error("vrrp: remove VIP", "err", err)
			} else {
				n.setVIPHeld(false)
			}
		case vrrp.Announce:
			l.startBurst(now)
			if n.opt.GARPRefresh > 0 {
				l.refreshAt = now.Add(n.opt.GARPRefresh)
			}
			if n.opt.GARPMasterRefresh > 0 {
				l.periodAt = now.Add(n.opt.GARPMasterRefresh)
			}
		case vrrp.Transition:
			l.transition(a)
		}
	}
}

func (l *loop) sendAdvert(now time.Time, prio uint8) {
	n := l.n
	// A master whose VIP add failed retries at every advert: the address may
	// have been blocked only for a moment (interface flapping, DAD).
	if prio > 0 && l.vipFailing && n.m.State() == vrrp.Master {
		l.addVIP()
	}
	k, err := l.tr.send(vrrp.Advert{
		VRID:     n.opt.VRID,
		Priority: prio,
		Interval: n.opt.Interval,
		Addrs:    []netip.Addr{n.opt.VIP.Addr()},
	})
	if k > 0 {
		n.met.sent.Add(float64(k))
		n.shared.add(func(s *shared) { s.sent += uint64(k) })
	}
	if err != nil && now.Sub(l.sendErrAt) > time.Second {
		l.sendErrAt = now
		n.log.Error("vrrp: send advert", "err", err)
	}
}

func (l *loop) addVIP() {
	n := l.n
	if err := n.vip.add(); err != nil {
		if !l.vipFailing {
			n.log.Error("vrrp: add VIP (retrying at every advert)", "err", err)
		}
		l.vipFailing = true
		n.setVIPHeld(false)
		return
	}
	if l.vipFailing {
		n.log.Info("vrrp: VIP added after earlier failure", "vip", n.opt.VIP)
	}
	l.vipFailing = false
	n.setVIPHeld(true)
}

func (l *loop) transition(a vrrp.Action) {
	n := l.n
	if a.To != vrrp.Master {
		l.vipFailing = false
	}
	// Field order is relied upon by operators' greps and the e2e tests:
	// msg="vrrp transition" from=.. to=.. reason=..
	n.log.Info("vrrp transition", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason, "vrid", n.opt.VRID)
	n.met.transitions.WithLabelValues(a.To.String()).Inc()
	n.met.setState(a.To)
	n.shared.add(func(s *shared) { s.transitions++ })
	l.nt.enqueue(notifyEvent{state: a.To.String(), vrid: n.opt.VRID, priority: n.m.Priority()})
}

// setLink records the interface's link in the tracked item for it, if any.
func (l *loop) setLink(up bool) {
	if i := l.track.link(); i >= 0 {
		l.track.failing[i] = !up
		l.track.errs[i] = ""
		if !up {
			l.track.errs[i] = "link down"
		}
	}
}

// applyTrack hands the tracked items' verdict to the machine. A fault is
// entered before the priority changes (a node going to Fault must not first
// advertise a lowered priority) and left after (so Backup starts with the
// right Skew_Time).
func (l *loop) applyTrack(now time.Time) {
	n, m := l.n, l.n.m
	prio, fault := l.track.effective(n.opt.Priority)
	if fault {
		l.exec(now, m.SetFault(now, true))
	}
	if prio != m.Priority() {
		n.log.Info("vrrp: priority changed by tracking", "from", m.Priority(), "to", prio, "configured", n.opt.Priority)
		l.exec(now, m.SetPriority(now, prio))
		n.met.priority.Set(float64(prio))
	}
	if !fault {
		l.exec(now, m.SetFault(now, false))
	}
	st := l.track.status()
	for _, t := range st {
		n.met.trackFailing.WithLabelValues(t.Check).Set(boolGauge(t.Failing))
	}
	n.shared.add(func(s *shared) { s.track, s.priority = st, prio })
}

// startBurst sends the first GARP of a burst now and schedules the rest
// garpGap apart through the loop's timer.
func (l *loop) startBurst(now time.Time) {
	l.garpLeft = l.n.opt.GARPRepeat
	l.garpNext = now
	l.garpDue(now)
}

func (l *loop) garpDue(now time.Time) {
	if !l.refreshAt.IsZero() && !now.Before(l.refreshAt) {
		l.refreshAt = time.Time{}
		l.garpLeft = l.n.opt.GARPRepeat
		l.garpNext = now
	}
	if !l.periodAt.IsZero() && !now.Before(l.periodAt) {
		l.periodAt = now.Add(l.n.opt.GARPMasterRefresh)
		if l.garpLeft <= 0 {
			l.garpLeft, l.garpNext = 1, now
		}
	}
	if l.garpLeft <= 0 || now.Before(l.garpNext) {
		return
	}
	l.garpLeft--
	l.garpNext = now.Add(garpGap)
	if err := l.g.send(); err != nil {
		l.n.log.Warn("vrrp: gratuitous ARP", "err", err)
		return
	}
	l.n.met.garpSent.Inc()
}
