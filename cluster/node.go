// Package cluster runs VRRPv3 virtual routers on Linux: the raw protocol-112
// transport, the virtual IPs (netlink + gratuitous ARP), the notify hook and
// metrics around the pure state machine of package cluster/vrrp. One Node
// runs one or more virtual routers (instances) on one interface: one socket
// and one receive goroutine hand each advert to its instance by VRID, and
// each instance has its own state machine, VIP and gratuitous ARPs. What the
// node's service depends on is tracked once per node, and its verdict
// applies to every instance.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
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
	Interface string
	// Instances are the virtual routers of the node, at most MaxInstances,
	// each with its own VRID and VIP. Empty = the one virtual router of
	// VRID, VIP, Priority, Interval, Preempt, PreemptDelay and StartMaster
	// below, which are then not used otherwise.
	Instances    []Instance
	VRID         uint8
	VIP          netip.Prefix // e.g. 198.18.0.100/24 or fd00:198:18::100/64; its family is the node's; added with this prefix (IPv4: label "<if>:vip" if it fits 15 chars; IPv6: no DAD)
	Priority     uint8
	Interval     time.Duration
	Preempt      bool
	PreemptDelay time.Duration
	// StartMaster takes the VIP and advertises as master the moment Run
	// starts (the seed's "start as master", keepalived's "state MASTER");
	// false starts as backup. It needs Preempt and no PreemptDelay.
	StartMaster  bool
	Source       netip.Addr   // primary address; zero = IPv4: the first address on Interface that is not a VIP, IPv6: its link-local address
	UnicastPeers []netip.Addr // empty = multicast 224.0.0.18 / ff02::12; non-empty = unicast to each + source allow-list
	Checksum     vrrp.ChecksumMode
	GARPRepeat   int           // gratuitous ARPs (IPv6: unsolicited neighbour advertisements) on becoming master (0 = default 5)
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
	// It applies to every instance: a failing weight lowers each one's
	// priority, a fault puts each one in Fault.
	Track      []Track
	NodeID     string       // "" = host name
	Logger     *slog.Logger // nil = slog.Default()
	Registerer prometheus.Registerer
}

// Instance is one virtual router of a Node.
type Instance struct {
	VRID         uint8
	VIP          netip.Prefix // as Options.VIP
	Priority     uint8
	Interval     time.Duration
	Preempt      bool
	PreemptDelay time.Duration
	StartMaster  bool // as Options.StartMaster
}

// MaxInstances bounds the virtual routers of one Node: each has a
// goroutine, a timer and an ARP socket, and each sends adverts.
const MaxInstances = 16

const (
	defaultGARPRepeat = 5
	// garpGap spaces the GARPs of one burst: a switch or a busy receiver that
	// misses one still gets the next (keepalived sends its burst back to back).
	garpGap = 10 * time.Millisecond
	// notifyDrain bounds how long Run waits for queued notify commands on exit.
	notifyDrain = 10 * time.Second
)

// Node is the VRRP virtual routers of one interface.
type Node struct {
	opt    Options
	log    *slog.Logger
	ifi    *net.Interface
	src    netip.Addr
	h      *netlink.Handle
	insts  []*instance         // in the order configured; the first is the node's "primary"
	byVRID map[uint8]*instance // read-only after New: the receive goroutine's demux
	filter vrrp.Filter         // VRID set per packet from byVRID
	met    *metrics

	ready   chan struct{}
	runOnce sync.Once
	shared  nodeShared
	// linkUp is the interface's link as netlink last reported it (running);
	// written by the link watcher, read by the tracker.
	linkUp atomic.Bool
}

// instance is one virtual router: its machine is owned by its loop
// goroutine; shared is what Status reads.
type instance struct {
	cfg    Instance
	vip    *vip
	m      *vrrp.Machine
	met    instMetrics
	rx     chan received
	linkUp chan struct{} // cap 1: the interface came up again
	// tracked (cap 1): the node's tracking verdict (nodeShared.verdict) was
	// published again.
	tracked chan struct{}
	shared  shared
}

// New validates o, resolves the interface and the source address in the
// calling thread's network namespace and opens a netlink handle there, so a
// Node created on a thread switched into a namespace keeps working in it.
// Run must be called from the same namespace (it opens the sockets).
func New(o Options) (*Node, error) {
	if o.Interface == "" {
		return nil, errors.New("cluster: interface is required")
	}
	insts, err := instances(o)
	if err != nil {
		return nil, err
	}
	o.Instances = insts
	// The VIPs' family is the node's: one advert carries one family (RFC
	// 5798 §5.2.9), and one socket and one source serve every instance, so
	// source and peers must match it too.
	v6 := insts[0].VIP.Addr().Is6()
	for _, in := range insts[1:] {
		if in.VIP.Addr().Is6() != v6 {
			return nil, fmt.Errorf("cluster: VIPs %s and %s: the virtual routers of one node must be of one family (one VRRP socket and source serve them all)", insts[0].VIP, in.VIP)
		}
	}
	if o.Source.IsValid() {
		o.Source = o.Source.Unmap().WithZone("")
		if o.Source.Is6() != v6 {
			return nil, fmt.Errorf("cluster: source %s is not of the VIP's family", o.Source)
		}
		// RFC 5798 §5.1.2.1: an IPv6 advert's source is the interface's link-local address.
		if v6 && !o.Source.IsLinkLocalUnicast() {
			return nil, fmt.Errorf("cluster: IPv6 source %s must be link-local (fe80::/10)", o.Source)
		}
		for _, in := range insts {
			if o.Source == in.VIP.Addr() {
				return nil, fmt.Errorf("cluster: source %s must not be the VIP", o.Source)
			}
		}
	}
	peers := make([]netip.Addr, 0, len(o.UnicastPeers))
	for _, p := range o.UnicastPeers {
		p = p.Unmap().WithZone("")
		if !p.IsValid() || p.Is6() != v6 {
			return nil, fmt.Errorf("cluster: unicast peer %s is not of the VIP's family", p)
		}
		peers = append(peers, p)
	}
	o.UnicastPeers = peers
	switch o.Checksum {
	case vrrp.ChecksumPseudoHeader, vrrp.ChecksumMessageOnly:
	default:
		return nil, fmt.Errorf("cluster: unknown checksum mode %d", o.Checksum)
	}
	if o.GARPRepeat < 0 || o.GARPRefresh < 0 || o.GARPMasterRefresh < 0 {
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
	for _, in := range insts {
		if in.VIP.Addr().Is6() && !in.VIP.Addr().IsLinkLocalUnicast() {
			// RFC 5798 §5.2.9 wants the virtual router's link-local address
			// first in IPv6 adverts; keepalived only logs this outside
			// vrrp_strict, and its peers compare the address list with
			// their own, so we carry exactly the configured VIP, as it does.
			o.Logger.Info("vrrp: IPv6 VIP is not link-local; RFC 5798 §5.2.9 asks for a link-local first address, keepalived accepts this too", "vrid", in.VRID, "vip", in.VIP)
		}
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

// instances returns o's virtual routers, checked: the list, or the one of
// the single-instance fields.
func instances(o Options) ([]Instance, error) {
	list := o.Instances
	if len(list) == 0 {
		list = []Instance{{VRID: o.VRID, VIP: o.VIP, Priority: o.Priority, Interval: o.Interval, Preempt: o.Preempt, PreemptDelay: o.PreemptDelay, StartMaster: o.StartMaster}}
	}
	if len(list) > MaxInstances {
		return nil, fmt.Errorf("cluster: %d virtual routers, at most %d", len(list), MaxInstances)
	}
	out := make([]Instance, 0, len(list))
	vrids := map[uint8]bool{}
	vips := map[netip.Addr]bool{}
	for _, in := range list {
		if !in.VIP.IsValid() || in.VIP.Addr().Zone() != "" {
			return nil, fmt.Errorf("cluster: VIP %q must be a prefix such as 198.18.0.100/24 or fd00:198:18::100/64", in.VIP)
		}
		in.VIP = netip.PrefixFrom(in.VIP.Addr().Unmap(), in.VIP.Bits()) // keep the address, not the masked network
		if in.PreemptDelay < 0 {
			return nil, errors.New("cluster: garp_repeat, garp_refresh and preempt_delay must not be negative")
		}
		// Two machines of one VRID would each take the other's adverts
		// for their own; two instances of one VIP would fight over it.
		if vrids[in.VRID] {
			return nil, fmt.Errorf("cluster: VRID %d configured twice", in.VRID)
		}
		if vips[in.VIP.Addr()] {
			return nil, fmt.Errorf("cluster: VIP %s configured twice", in.VIP.Addr())
		}
		vrids[in.VRID], vips[in.VIP.Addr()] = true, true
		out = append(out, in)
	}
	return out, nil
}

func newNode(o Options, ifi *net.Interface, h *netlink.Handle) (*Node, error) {
	link, err := h.LinkByIndex(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("cluster: netlink link %q: %w", o.Interface, err)
	}
	vipAddrs := make([]netip.Addr, 0, len(o.Instances))
	for _, in := range o.Instances {
		vipAddrs = append(vipAddrs, in.VIP.Addr())
	}
	src := o.Source
	if !src.IsValid() {
		if o.Instances[0].VIP.Addr().Is6() {
			src, err = firstLinkLocal6(h, link)
		} else {
			src, err = firstIPv4(h, link, vipAddrs)
		}
		if err != nil {
			return nil, err
		}
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	for _, t := range o.Track {
		met.trackFailing.WithLabelValues(t.Name).Set(0)
	}
	n := &Node{
		opt:    o,
		log:    o.Logger,
		ifi:    ifi,
		src:    src,
		h:      h,
		byVRID: make(map[uint8]*instance, len(o.Instances)),
		filter: vrrp.Filter{
			// Packets from these are our own, looped back or reflected.
			Own:     append([]netip.Addr{src}, vipAddrs...),
			Allowed: o.UnicastPeers,
		},
		met:   met,
		ready: make(chan struct{}),
	}
	for _, in := range o.Instances {
		m, err := vrrp.New(vrrp.Config{
			VRID:         in.VRID,
			Priority:     in.Priority,
			Interval:     in.Interval,
			Preempt:      in.Preempt,
			PreemptDelay: in.PreemptDelay,
			StartMaster:  in.StartMaster,
			Primary:      src,
			VIPs:         []netip.Addr{in.VIP.Addr()},
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: VRID %d: %w", in.VRID, err)
		}
		inst := &instance{
			cfg:     in,
			vip:     newVIP(h, link, in.VIP),
			m:       m,
			met:     met.instance(in.VRID),
			rx:      make(chan received, 64),
			linkUp:  make(chan struct{}, 1),
			tracked: make(chan struct{}, 1),
		}
		inst.met.priority.Set(float64(in.Priority))
		inst.shared.priority = in.Priority
		n.insts = append(n.insts, inst)
		n.byVRID[in.VRID] = inst
	}
	n.shared.dropped = make(map[string]uint64)
	n.shared.track = newTracking(o.Track).status()
	return n, nil
}

// firstIPv4 picks the interface's first IPv4 address that is not a VIP: a
// VIP left behind by a crashed predecessor may well be listed first.
func firstIPv4(h *netlink.Handle, link netlink.Link, vips []netip.Addr) (netip.Addr, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return netip.Addr{}, fmt.Errorf("cluster: list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ip = ip.Unmap(); ok && ip.Is4() && !slices.Contains(vips, ip) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("cluster: no IPv4 address on %s other than the VIP; set the source address", link.Attrs().Name)
}

// firstLinkLocal6 picks the interface's IPv6 link-local address: the
// source of IPv6 adverts (RFC 5798 §5.1.2.1) and so the primary address
// that breaks priority ties. One that has passed DAD is preferred; a
// tentative one is still taken (the first adverts fail until DAD ends,
// which the send errors log) rather than refusing to start.
func firstLinkLocal6(h *netlink.Handle, link netlink.Link) (netip.Addr, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return netip.Addr{}, fmt.Errorf("cluster: list addresses of %s: %w", link.Attrs().Name, err)
	}
	var tentative netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.Is6() || !ip.IsLinkLocalUnicast() || a.Flags&unix.IFA_F_DADFAILED != 0 {
			continue
		}
		if a.Flags&unix.IFA_F_TENTATIVE == 0 {
			return ip, nil
		}
		if !tentative.IsValid() {
			tentative = ip
		}
	}
	if tentative.IsValid() {
		return tentative, nil
	}
	return netip.Addr{}, fmt.Errorf("cluster: no IPv6 link-local address on %s (IPv6 disabled?); set the source address", link.Attrs().Name)
}

// Ready is closed when the transport is open and every machine started.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Run removes stale VIPs, opens the sockets (in the calling thread's
// namespace), starts the machines and runs until ctx ends. Then it stops
// gracefully: a master sends an advert with priority 0 so a backup takes
// over after Skew_Time, the VIPs are removed, the sockets closed and the
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
	for _, in := range n.insts {
		if err := in.vip.remove(); err != nil {
			return fmt.Errorf("cluster: remove stale VIP: %w", err)
		}
	}
	tr, err := n.openTransport()
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	garps := make([]announcer, 0, len(n.insts))
	closeGARPs := func() {
		for _, g := range garps {
			g.close()
		}
	}
	for _, in := range n.insts {
		g, err := n.openAnnouncer(in.cfg.VIP.Addr())
		if err != nil {
			closeGARPs()
			tr.close()
			return fmt.Errorf("cluster: %w", err)
		}
		garps = append(garps, g)
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

	stopRx := make(chan struct{})
	wg.Go(func() { n.receive(tr, stopRx) })

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
		closeGARPs()
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

	// Tracking is the node's: one poller per checked item and one tracker
	// that publishes their joint verdict to every instance. The verdict at
	// start (the link; polled items start as working) is published before
	// the loops start, so a node whose tracked link is down starts in Fault.
	tk := newTracking(n.opt.Track)
	tk.setLink(n.linkUp.Load())
	n.publishTrack(tk)
	trackCtx, stopTracks := context.WithCancel(ctx)
	polled := make(chan trackResult, len(n.opt.Track))
	var trackWG sync.WaitGroup
	for i, t := range n.opt.Track {
		if t.Check != nil {
			trackWG.Go(func() { poll(trackCtx, i, t, polled) })
		}
	}
	trackWG.Go(func() { n.track(trackCtx, tk, polled, linkChanged) })

	// One loop per virtual router: a slow netlink call or GARP burst of one
	// does not delay another's adverts.
	var loops sync.WaitGroup
	started := make([]chan struct{}, len(n.insts))
	for i, in := range n.insts {
		n.log.Info("vrrp starting", "vrid", in.cfg.VRID, "interface", n.ifi.Name, "src_addr", n.src, "vip", in.cfg.VIP,
			"priority", in.cfg.Priority, "interval", in.cfg.Interval, "start_state", startState(in.cfg.StartMaster), "transport", n.Status().Mode)
		started[i] = make(chan struct{})
		l := &loop{n: n, in: in, tr: tr, g: garps[i], nt: nt, started: started[i]}
		loops.Go(func() { l.run(ctx) })
	}
	for _, c := range started {
		<-c // each loop starts its machine before it looks at ctx
	}
	close(n.ready)
	loops.Wait()
	stopTracks()
	trackWG.Wait()

	// Stop the receiver: closing the socket ends its blocking read. The
	// link watcher ends when netlink closes its channel.
	linksStopping.Store(true)
	close(stopLinks)
	close(stopRx)
	tr.close()
	closeGARPs()
	// Belt and braces: whatever the machines did, a stopped node holds no VIP.
	for _, in := range n.insts {
		if err := in.vip.remove(); err != nil {
			n.log.Error("vrrp: remove VIP on exit", "vip", in.cfg.VIP, "err", err)
		}
		in.setVIPHeld(false)
	}

	nt.close()
	select {
	case <-nt.done:
	case <-time.After(notifyDrain):
		stopNotify(fmt.Errorf("notify queue not drained within %s", notifyDrain))
	}
	wg.Wait()
	n.log.Info("vrrp stopped", "vrids", n.vrids())
	return nil
}

// openTransport opens the VRRP socket of the node's family in the calling
// thread's namespace.
func (n *Node) openTransport() (advertTransport, error) {
	if n.src.Is6() {
		return openTransport6(n.ifi, n.src, n.opt.UnicastPeers, n.opt.Checksum)
	}
	return openTransport(n.ifi, n.src, n.opt.UnicastPeers, n.opt.Checksum)
}

// openAnnouncer opens what announces vip: gratuitous ARP for IPv4,
// unsolicited neighbour advertisements from our link-local source for IPv6.
func (n *Node) openAnnouncer(vip netip.Addr) (announcer, error) {
	if vip.Is6() {
		return openUnsolicitedNA(n.ifi, n.src, vip)
	}
	return openGARP(n.ifi, vip)
}

// vrids lists the node's VRIDs for logs.
func (n *Node) vrids() []uint8 {
	out := make([]uint8, 0, len(n.insts))
	for _, in := range n.insts {
		out = append(out, in.cfg.VRID)
	}
	return out
}

// receive reads packets, filters them and hands accepted adverts to their
// instance's loop. Drops are counted here, for the node: a packet of a VRID
// we do not run has no instance to count it.
func (n *Node) receive(tr advertTransport, stop <-chan struct{}) {
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
		if !n.dispatch(r, stop) {
			return
		}
	}
}

// dispatch filters one packet of any transport and hands an accepted advert
// to the loop of its VRID. It returns false when stop closed meanwhile.
func (n *Node) dispatch(r vrrp.Received, stop <-chan struct{}) bool {
	in := n.insts[0]
	// RFC 5798 §5.1: the VRID is the second octet. A VRID we do not run
	// keeps the first instance's, so Accept drops it as "vrid" after the
	// checks that come first.
	if len(r.Payload) > 1 {
		if x, ok := n.byVRID[r.Payload[1]]; ok {
			in = x
		}
	}
	f := n.filter
	f.VRID = in.cfg.VRID
	a, reason := f.Accept(r)
	if reason != "" {
		n.met.dropped.WithLabelValues(string(reason)).Inc()
		n.shared.add(func(s *nodeShared) { s.dropped[string(reason)]++ })
		n.log.Debug("vrrp drop", "reason", reason, "src", r.Src, "dst", r.Dst, "ttl", r.TTL, "len", len(r.Payload))
		return true
	}
	in.met.received.Inc()
	in.shared.add(func(s *shared) { s.recv++ })
	select {
	case in.rx <- received{src: r.Src, advert: a}:
		return true
	case <-stop:
		return false
	}
}

// watchLink keeps n.linkUp current, signals changed (the tracker) each time
// the interface's link (running) changes and every instance's linkUp each
// time it comes back up. It ends when updates is closed.
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
		default: // one pending signal is enough: the tracker reads n.linkUp
		}
		if isUp {
			for _, in := range n.insts {
				select {
				case in.linkUp <- struct{}{}:
				default: // one pending signal is enough
				}
			}
		}
	}
}

// track is the node's tracker goroutine: it alone owns t, records each
// polled verdict and link change in it and publishes the result to every
// instance. It ends with ctx.
func (n *Node) track(ctx context.Context, t *tracking, polled <-chan trackResult, linkChanged <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-linkChanged:
			t.setLink(n.linkUp.Load())
		case r := <-polled:
			t.failing[r.i], t.errs[r.i] = r.failing, r.err
			it := t.items[r.i]
			if r.failing {
				n.log.Warn("vrrp: tracked check failing", "check", it.Name, "weight", it.Weight, "fault", it.Fault, "err", r.err)
			} else {
				n.log.Info("vrrp: tracked check recovered", "check", it.Name)
			}
		}
		n.publishTrack(t)
	}
}

// publishTrack makes t's verdict the node's (status, metrics) and signals
// every instance's loop to apply it.
func (n *Node) publishTrack(t *tracking) {
	st, v := t.status(), t.verdict()
	for _, s := range st {
		n.met.trackFailing.WithLabelValues(s.Check).Set(boolGauge(s.Failing))
	}
	n.shared.add(func(s *nodeShared) { s.track, s.verdict = st, v })
	for _, in := range n.insts {
		select {
		case in.tracked <- struct{}{}:
		default: // one pending signal is enough: the loop reads the latest verdict
		}
	}
}

func (in *instance) setVIPHeld(b bool) {
	in.shared.add(func(s *shared) { s.vipHeld = b })
	in.met.vipHeld.Set(boolGauge(b))
}

// received is one accepted advert on its way to the machine goroutine.
type received struct {
	src    netip.Addr
	advert vrrp.Advert
}

// loop is one instance's machine goroutine's state: it alone touches its
// Machine, its GARP socket and schedule, so none of it needs a lock (the
// shared transport's send is safe for concurrent use).
type loop struct {
	n       *Node
	in      *instance
	tr      advertTransport
	g       announcer // gratuitous ARP (IPv4) or unsolicited NA (IPv6)
	nt      *notifier
	started chan<- struct{} // closed once the machine started

	garpLeft  int       // GARPs still to send in the current burst
	garpNext  time.Time // when the next one of the burst is due
	refreshAt time.Time // second burst; zero = none pending
	periodAt  time.Time // next periodic GARP while master; zero = none

	sendErrAt  time.Time // last logged send error (rate limit)
	vipFailing bool      // last VIP add failed (log once, retry on each advert)
}

func (l *loop) run(ctx context.Context) {
	in := l.in
	m := in.m
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The verdict at start: a fault means Start enters Fault.
	l.applyTrack(time.Now())
	l.exec(time.Now(), m.Start(time.Now()))
	in.shared.snapshot(m)
	close(l.started)
	for {
		l.arm(timer)
		select {
		case <-ctx.Done():
			l.exec(time.Now(), m.Shutdown(time.Now()))
			in.shared.snapshot(m)
			return
		case r := <-in.rx:
			now := time.Now()
			l.exec(now, m.Receive(now, r.src, r.advert))
		case <-in.linkUp:
			// Only with the link untracked (or tracked by a weight): a
			// link tracked as a fault made us leave Master.
			if m.State() == vrrp.Master {
				now := time.Now()
				l.n.log.Info("vrrp: link up again as master, announcing", "vrid", in.cfg.VRID, "vip", in.cfg.VIP)
				l.sendAdvert(now, m.Priority())
				l.startBurst(now)
			}
		case <-in.tracked:
			l.applyTrack(time.Now())
		case <-timer.C:
			// One timer serves the machine and the GARP schedule; Tick with
			// nothing due is a no-op.
			now := time.Now()
			l.exec(now, m.Tick(now))
			l.garpDue(now)
		}
		in.shared.snapshot(m)
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
	earliest(l.in.m.Deadline())
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
	n, in := l.n, l.in
	for _, a := range acts {
		switch a.Kind {
		case vrrp.SendAdvert:
			l.sendAdvert(now, a.Priority)
		case vrrp.AddVIP:
			l.addVIP()
		case vrrp.DelVIP:
			// Leaving master: a pending GARP would claim the address for us.
			l.garpLeft, l.refreshAt, l.periodAt = 0, time.Time{}, time.Time{}
			if err := in.vip.remove(); err != nil {
				n.log.Error("vrrp: remove VIP", "vrid", in.cfg.VRID, "err", err)
			} else {
				in.setVIPHeld(false)
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
			l.transition(now, a)
		}
	}
}

func (l *loop) sendAdvert(now time.Time, prio uint8) {
	n, in := l.n, l.in
	// A master whose VIP add failed retries at every advert: the address may
	// have been blocked only for a moment (interface flapping, DAD).
	if prio > 0 && l.vipFailing && in.m.State() == vrrp.Master {
		l.addVIP()
	}
	k, err := l.tr.send(vrrp.Advert{
		VRID:     in.cfg.VRID,
		Priority: prio,
		Interval: in.cfg.Interval,
		Addrs:    []netip.Addr{in.cfg.VIP.Addr()},
	})
	if k > 0 {
		in.met.sent.Add(float64(k))
		in.shared.add(func(s *shared) { s.sent += uint64(k) })
	}
	if err != nil && now.Sub(l.sendErrAt) > time.Second {
		l.sendErrAt = now
		n.log.Error("vrrp: send advert", "vrid", in.cfg.VRID, "err", err)
	}
}

func (l *loop) addVIP() {
	n, in := l.n, l.in
	if err := in.vip.add(); err != nil {
		if !l.vipFailing {
			n.log.Error("vrrp: add VIP (retrying at every advert)", "vrid", in.cfg.VRID, "err", err)
		}
		l.vipFailing = true
		in.setVIPHeld(false)
		return
	}
	if l.vipFailing {
		n.log.Info("vrrp: VIP added after earlier failure", "vrid", in.cfg.VRID, "vip", in.cfg.VIP)
	}
	l.vipFailing = false
	in.setVIPHeld(true)
}

func (l *loop) transition(now time.Time, a vrrp.Action) {
	n, in := l.n, l.in
	if a.To != vrrp.Master {
		l.vipFailing = false
	}
	// Field order is relied upon by operators' greps and the e2e tests:
	// msg="vrrp transition" from=.. to=.. reason=..
	n.log.Info("vrrp transition", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason, "vrid", in.cfg.VRID, "vip", in.cfg.VIP)
	in.met.transitions.WithLabelValues(a.To.String()).Inc()
	in.met.setState(a.To)
	in.shared.add(func(s *shared) {
		s.transitions++
		s.recent.add(Transition{Time: now, From: a.From.String(), To: a.To.String(), Reason: a.Reason})
	})
	l.nt.enqueue(notifyEvent{state: a.To.String(), vrid: in.cfg.VRID, priority: in.m.Priority()})
}

// applyTrack hands the node's tracking verdict to this instance's machine:
// its own configured priority plus the failing weights, and the fault. A
// fault is entered before the priority changes (a node going to Fault must
// not first advertise a lowered priority) and left after (so Backup starts
// with the right Skew_Time).
func (l *loop) applyTrack(now time.Time) {
	n, in, m := l.n, l.in, l.in.m
	n.shared.mu.Lock()
	v := n.shared.verdict
	n.shared.mu.Unlock()
	prio := v.priority(in.cfg.Priority)
	if v.fault {
		l.exec(now, m.SetFault(now, true))
	}
	if prio != m.Priority() {
		n.log.Info("vrrp: priority changed by tracking", "vrid", in.cfg.VRID, "from", m.Priority(), "to", prio, "configured", in.cfg.Priority)
		l.exec(now, m.SetPriority(now, prio))
		in.met.priority.Set(float64(prio))
	}
	if !v.fault {
		l.exec(now, m.SetFault(now, false))
	}
	in.shared.add(func(s *shared) { s.priority = prio })
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
		l.n.log.Warn("vrrp: announce VIP", "vrid", l.in.cfg.VRID, "err", err)
		return
	}
	l.in.met.garpSent.Inc()
}
