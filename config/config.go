// Package config is the node's configuration file: one documented struct
// whose YAML keys are the contract in SPEC.md, its defaults, strict parsing
// (an unknown key or a bad value is an error naming the key and its line) and
// a validation that reports every problem at once.
//
// config/example.yaml is the commented reference of every key.
package config

import (
	"os"
	"slices"
	"time"

	"github.com/mxgate/mxgate/scanner"
)

// Config is the whole configuration file of one node.
type Config struct {
	// Node is this node's identity and local state.
	Node Node `yaml:"node" json:"node"`
	// SMTP is the front end that accepts the clients' sessions.
	SMTP SMTP `yaml:"smtp" json:"smtp"`
	// Downstream is the mail server that receives clean (and released) mail.
	Downstream Downstream `yaml:"downstream" json:"downstream"`
	// Scanner is the scanning pipeline and its worker pool.
	Scanner Scanner `yaml:"scanner" json:"scanner"`
	// Store selects where quarantine, lists and the message log live.
	Store Store `yaml:"store" json:"store"`
	// Admin is the HTTP admin API, metrics and status page listener.
	Admin Admin `yaml:"admin" json:"admin"`
	// Cluster is the VRRP cluster membership; ignored unless Enabled.
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	// Reports is who gets the daily report by mail (cluster-wide).
	Reports Reports `yaml:"reports" json:"reports"`
	// Digest is the recipients' daily quarantine digest (cluster-wide).
	Digest Digest `yaml:"digest" json:"digest"`
}

// Node is this node's identity and local state.
type Node struct {
	// ID names the node in headers, logs and the cluster; unique in the
	// cluster. Default: the host name.
	ID string `yaml:"id" json:"id"`
	// DataDir holds the embedded store and other local state.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// LogLevel is the least severe level logged: debug, info, warn or error.
	LogLevel string `yaml:"log_level" json:"log_level"`
	// LogFormat is text (logfmt-like, for people) or json (for collectors).
	LogFormat string `yaml:"log_format" json:"log_format"`
	// File is the node file this configuration was read from: set by
	// Load, never read from a file; "" = the built-in defaults (serve
	// without -c), which the log then names instead of a file.
	File string `yaml:"-" json:"-"`
}

// SMTP is the front end that accepts the clients' sessions.
type SMTP struct {
	// Listen are the host:port addresses to accept SMTP on; in a cluster the
	// VIP's address (and port 25).
	Listen []string `yaml:"listen" json:"listen"`
	// Hostname is announced in the greeting and in Received headers.
	// Default: the host name.
	Hostname string `yaml:"hostname" json:"hostname"`
	// AcceptDomains are the domains mail is accepted for (inbound).
	// Parse lower-cases them.
	AcceptDomains []string `yaml:"accept_domains" json:"accept_domains"`
	// TrustedNetworks are the CIDRs of clients that may relay to any domain
	// (outbound).
	TrustedNetworks []string `yaml:"trusted_networks" json:"trusted_networks"`
	// MaxMessageBytes is the largest message accepted (552 5.3.4 above).
	MaxMessageBytes int64 `yaml:"max_message_bytes" json:"max_message_bytes"`
	// MaxRecipients is the most recipients in one transaction.
	MaxRecipients int `yaml:"max_recipients" json:"max_recipients"`
	// MaxConnections is the most concurrent sessions on this node.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxConnectionsPerIP is the most concurrent sessions from one client IP.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" json:"max_connections_per_ip"`
	// ReadTimeout bounds the wait for each command from the client.
	ReadTimeout Duration `yaml:"read_timeout" json:"read_timeout"`
	// WriteTimeout bounds each write of a reply to the client.
	WriteTimeout Duration `yaml:"write_timeout" json:"write_timeout"`
	// DataTimeout bounds the whole DATA phase: the body must arrive within it,
	// so a client trickling bytes cannot hold a session for ever.
	DataTimeout Duration `yaml:"data_timeout" json:"data_timeout"`
	// DrainTimeout is how long a graceful stop waits for running sessions
	// before closing them.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout"`
	// MaxLineLength is the longest line accepted, commands and body alike
	// (RFC 5321 §4.5.3.1.6 requires at least 1000 octets).
	MaxLineLength int `yaml:"max_line_length" json:"max_line_length"`
	// HardErrorLimit is how many refused commands (relay denied, blocked,
	// bad addresses, the downstream's refusals) end a connection with
	// 421 4.7.0, like Postfix's smtpd_hard_error_limit; an accepted message
	// starts the count anew.
	HardErrorLimit int `yaml:"hard_error_limit" json:"hard_error_limit"`
	// TLS enables STARTTLS when a certificate is configured.
	TLS TLS `yaml:"tls" json:"tls"`
	// ProxyProtocol accepts PROXY v1/v2 headers from ProxyTrusted sources
	// (a load balancer in front).
	ProxyProtocol bool `yaml:"proxy_protocol" json:"proxy_protocol"`
	// ProxyTrusted are the CIDRs allowed to send PROXY headers; required
	// when ProxyProtocol is on, because anyone else could forge the client
	// address and walk past the relay policy.
	ProxyTrusted []string `yaml:"proxy_trusted" json:"proxy_trusted"`
}

// TLS is the STARTTLS certificate.
type TLS struct {
	// Cert is the PEM certificate chain file; set together with Key.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the PEM private key file; set together with Cert.
	Key string `yaml:"key" json:"key"`
	// Require refuses MAIL before STARTTLS.
	Require bool `yaml:"require" json:"require"`
}

// Downstream is the mail server that receives clean (and released) mail.
type Downstream struct {
	// Address is the downstream server's host:port.
	Address string `yaml:"address" json:"address"`
	// Timeout bounds each command to the downstream server.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Helo is the name announced to the downstream server.
	// Default: smtp.hostname.
	Helo string `yaml:"helo" json:"helo"`
}

// Scanner is the scanning pipeline and its worker pool: the scanner's
// Policy (thresholds, actions, rules, attachments, MIME limits), which a
// cluster shares as the revisions of clusterconf, and the settings this
// node keeps for itself (workers, queue, timeout, engine addresses,
// simulated_delay). Both are the scanner's own types, inlined: their keys
// sit directly under scanner:, and a new scanner setting is one field
// there.
type Scanner struct {
	scanner.Policy `yaml:",inline"`
	scanner.Local  `yaml:",inline"`
}

// Store selects where quarantine, lists and the message log live.
type Store struct {
	// Redis is the shared store's URL (redis://, rediss://, redis-sentinel://
	// or a redis+cluster URL); empty = the embedded store under node.data_dir.
	Redis string `yaml:"redis" json:"redis"`
	// QuarantineRetention is how long a quarantined message is kept.
	QuarantineRetention Duration `yaml:"quarantine_retention" json:"quarantine_retention"`
	// LogRetention is how long message log records are kept.
	LogRetention Duration `yaml:"log_retention" json:"log_retention"`
	// LogJournalMax bounds, in bytes, the node's message log journal
	// (node.data_dir/msglog-journal): the records the store has not
	// confirmed yet. Beyond it records are dropped and counted.
	LogJournalMax int64 `yaml:"log_journal_max" json:"log_journal_max"`
	// LogJournalSync is 0 for the reply to wait until its record is
	// fdatasync'd, or how long a written record may wait for its
	// fdatasync (the reply then waits only for the write: a crash of the
	// process loses nothing, a power loss up to this much).
	LogJournalSync Duration `yaml:"log_journal_sync" json:"log_journal_sync"`
}

// Admin is the HTTP admin API, metrics and status page listener.
type Admin struct {
	// Listen is the admin listener's host:port; empty = no admin listener.
	Listen string `yaml:"listen" json:"listen"`
	// Token is the bearer token of the admin API; required when Listen is
	// not a loopback address.
	Token string `yaml:"token" json:"token"`
	// TLS serves the admin API over HTTPS (TLS 1.2 or later) when a
	// certificate is configured; SIGHUP reads the files again.
	TLS AdminTLS `yaml:"tls" json:"tls"`
	// MetricsAuth makes /metrics need the token as the API does; /healthz
	// stays open for load balancers.
	MetricsAuth bool `yaml:"metrics_auth" json:"metrics_auth"`
}

// AdminTLS is the admin listener's certificate.
type AdminTLS struct {
	// Cert is the PEM certificate chain file; set together with Key.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the PEM private key file; set together with Cert.
	Key string `yaml:"key" json:"key"`
}

// Enabled reports whether the admin API is served over TLS.
func (t AdminTLS) Enabled() bool { return t.Cert != "" }

// Cluster is the VRRP cluster membership; validated only when Enabled.
type Cluster struct {
	// Enabled turns clustering on; off = a single node.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Interface carries the VRRP advertisements and the VIP.
	Interface string `yaml:"interface" json:"interface"`
	// Instances are several virtual routers on the interface, each with
	// its own VRID, VIP and state (keepalived's vrrp_instance blocks):
	// two nodes with mirrored priorities both take mail. Empty = the one
	// of VRID and VIP below; else VRID and VIP are not used (VIP must be
	// empty) and the keys below are each item's defaults.
	Instances []Instance `yaml:"instances" json:"instances"`
	// VRID is the virtual router id, 1-255, the same on every node.
	VRID int `yaml:"vrid" json:"vrid"`
	// VIP is the virtual address with its prefix length (198.18.0.100/24).
	VIP string `yaml:"vip" json:"vip"`
	// Priority is 1-254, highest wins; 255 only on the address owner.
	Priority int `yaml:"priority" json:"priority"`
	// AdvertInterval is the advertisement interval, 10ms to 40.95s in
	// centiseconds (the unit on the wire).
	AdvertInterval Duration `yaml:"advert_interval" json:"advert_interval"`
	// StartState is what the node does when it starts (keepalived's state):
	// "master" takes the VIP and advertises at once, so a lower master
	// steps down on its first advert ("start as master"); "backup" waits
	// and takes over when it hears a lower master ("start as backup", with
	// Preempt) or when the master fails. The address owner (priority 255)
	// starts master either way.
	StartState string `yaml:"start_state" json:"start_state"`
	// Preempt: true = a backup takes the VIP from a lower-priority master
	// as soon as it hears it; false = never from a live master (keepalived's
	// nopreempt; needs start_state backup).
	Preempt bool `yaml:"preempt" json:"preempt"`
	// PreemptDelay holds back a preempting node after its start, so a
	// node that just booted does not take the VIP before it is ready
	// (start_state backup only).
	PreemptDelay Duration `yaml:"preempt_delay" json:"preempt_delay"`
	// Source is this node's primary IPv4 address: the source of its adverts
	// and its identity in the tie-break. Empty = the first IPv4 address on
	// the interface that is not the VIP.
	Source string `yaml:"source" json:"source"`
	// UnicastPeers are the other nodes' IPs; empty = multicast 224.0.0.18.
	// In unicast mode only adverts from these addresses are accepted.
	UnicastPeers []string `yaml:"unicast_peers" json:"unicast_peers"`
	// Checksum is the VRRPv3 IPv4 checksum form sent: "pseudo-header"
	// (RFC 5798 as keepalived reads it, its default) or "message" (RFC
	// 9568, keepalived's v3_checksum_as_v2). Both are accepted.
	Checksum string `yaml:"checksum" json:"checksum"`
	// Notify is a command run on every state change with the arguments
	// <state> <vrid> <priority> appended, one at a time, in order.
	Notify string `yaml:"notify" json:"notify"`
	// GARPRepeat is how many gratuitous ARPs announce the VIP on becoming
	// master; GARPRefresh is when a second burst follows (0 = none).
	GARPRepeat  int      `yaml:"garp_repeat" json:"garp_repeat"`
	GARPRefresh Duration `yaml:"garp_refresh" json:"garp_refresh"`
	// GARPMasterRefresh repeats one gratuitous ARP this often while master
	// (0 = never), so clients find the master again soon after a split
	// brain healed without any node hearing a lower priority.
	GARPMasterRefresh Duration `yaml:"garp_master_refresh" json:"garp_master_refresh"`
	// Track lists what this node's service depends on (keepalived's
	// track_script/track_interface): while an item fails the node lowers
	// its advertised priority by the item's weight, or with fault: true
	// enters the FAULT state (no VIP, never master).
	Track []Track `yaml:"track" json:"track"`
	// TrackInterface tracks the interface's link as {check: interface,
	// fault: true} unless Track lists the interface itself: as keepalived,
	// which tracks its VRRP interface unless told dont_track_primary.
	TrackInterface bool `yaml:"track_interface" json:"track_interface"`
	// Mode is active-active (every node scans by weight) or active-passive
	// (the master scans everything).
	Mode string `yaml:"mode" json:"mode"`
	// Weight is this node's share of the scanning in active-active mode.
	Weight int `yaml:"weight" json:"weight"`
	// PeerListen is the host:port of the peer scan API.
	PeerListen string `yaml:"peer_listen" json:"peer_listen"`
	// PeerMaxConnections bounds the open connections of the peer API;
	// 0 = 4 x PeerMaxConnectionsPerIP (room for an old and a new master
	// and the static peers at once).
	PeerMaxConnections int `yaml:"peer_max_connections" json:"peer_max_connections"`
	// PeerMaxConnectionsPerIP bounds those from one address (IPv6: one
	// /64); 0 = 2 x (scanner workers + queue), at least 16: the master's
	// concurrent scans to this node, which this node's pool takes.
	PeerMaxConnectionsPerIP int `yaml:"peer_max_connections_per_ip" json:"peer_max_connections_per_ip"`
	// Secret authenticates the peer API; the same on every node.
	Secret string `yaml:"secret" json:"secret"`
	// MembershipTTL is how long a node's heartbeat in the shared store
	// counts; a node that stops is out of the dispatch within 2 × TTL.
	MembershipTTL Duration `yaml:"membership_ttl" json:"membership_ttl"`
	// Peers are the other nodes' peer APIs, used for scanning while the
	// shared store (and with it the live membership) cannot be read.
	Peers []Peer `yaml:"peers" json:"peers"`
}

// The checks cluster.track knows.
const (
	TrackDownstream = "downstream" // the downstream server takes TCP connections
	TrackStore      = "store"      // the store answers
	TrackEngines    = "engines"    // no engine the policy needs (on_error not accept) is down
	TrackInterface  = "interface"  // the VRRP interface's link is up
)

// Defaults of a polled track item (keepalived's vrrp_script has interval 1s,
// fall 1, rise 1; two in a row keep one lost SYN or slow answer from moving
// the VIP, at the cost of a second of detection).
const (
	DefaultTrackInterval = time.Second
	DefaultTrackFall     = 2
	DefaultTrackRise     = 2
)

// Track is one item of cluster.track.
type Track struct {
	// Check is downstream, store, engines or interface.
	Check string `yaml:"check" json:"check"`
	// Weight (-254..-1) lowers the advertised priority while the check
	// fails; exactly one of Weight and Fault.
	Weight int `yaml:"weight" json:"weight"`
	// Fault puts the node in the FAULT state while the check fails.
	Fault bool `yaml:"fault" json:"fault"`
	// Interval between checks (0 = DefaultTrackInterval); Fall failures in
	// a row make the item failing, Rise successes in a row make it work
	// again (0 = the defaults). Not for the interface, whose link changes
	// count at once.
	Interval Duration `yaml:"interval" json:"interval"`
	Fall     int      `yaml:"fall" json:"fall"`
	Rise     int      `yaml:"rise" json:"rise"`
}

// Timing is the item's interval, fall and rise with the defaults applied.
func (t Track) Timing() (time.Duration, int, int) {
	iv, fall, rise := t.Interval.Duration, t.Fall, t.Rise
	if iv == 0 {
		iv = DefaultTrackInterval
	}
	if fall == 0 {
		fall = DefaultTrackFall
	}
	if rise == 0 {
		rise = DefaultTrackRise
	}
	return iv, fall, rise
}

// Tracks is cluster.track with the implicit interface item of
// TrackInterface added.
func (cl Cluster) Tracks() []Track {
	out := slices.Clone(cl.Track)
	if cl.TrackInterface && !slices.ContainsFunc(out, func(t Track) bool { return t.Check == TrackInterface }) {
		out = append(out, Track{Check: TrackInterface, Fault: true})
	}
	return out
}

// Instance is one virtual router of cluster.instances. A zero (or, for
// preempt and preempt_delay, missing) value takes the cluster's key of the
// same name.
type Instance struct {
	VRID           int       `yaml:"vrid" json:"vrid"`
	VIP            string    `yaml:"vip" json:"vip"`
	Priority       int       `yaml:"priority" json:"priority,omitempty"`
	AdvertInterval Duration  `yaml:"advert_interval" json:"advert_interval,omitzero"`
	Preempt        *bool     `yaml:"preempt" json:"preempt,omitempty"`
	PreemptDelay   *Duration `yaml:"preempt_delay" json:"preempt_delay,omitempty"`
	// StartState is master or backup (cluster.start_state's values).
	StartState string `yaml:"start_state" json:"start_state,omitempty"`
}

// MaxInstances bounds cluster.instances: each virtual router sends its
// own adverts and has its own goroutine and ARP socket.
const MaxInstances = 16

// VirtualRouters returns the cluster's virtual routers with every field
// set: cluster.instances with the cluster's keys filled in, or the one of
// the cluster's own vrid and vip.
func (cl Cluster) VirtualRouters() []Instance {
	list := cl.Instances
	if len(list) == 0 {
		list = []Instance{{VRID: cl.VRID, VIP: cl.VIP}}
	}
	out := make([]Instance, 0, len(list))
	for _, in := range list {
		if in.Priority == 0 {
			in.Priority = cl.Priority
		}
		if in.AdvertInterval.Duration == 0 {
			in.AdvertInterval = cl.AdvertInterval
		}
		if in.Preempt == nil {
			in.Preempt = &cl.Preempt
		}
		if in.PreemptDelay == nil {
			in.PreemptDelay = &cl.PreemptDelay
		}
		if in.StartState == "" {
			in.StartState = cl.StartState
		}
		out = append(out, in)
	}
	return out
}

// Peer is another node's peer scan API, known from the node file.
type Peer struct {
	ID      string `yaml:"id" json:"id"`
	Address string `yaml:"address" json:"address"` // host:port of its peer_listen
	Weight  int    `yaml:"weight" json:"weight"`
}

// Default is the configuration of a single node on loopback with the
// embedded store: what `mxgate serve` runs without -c. It passes Validate.
func Default() Config {
	host := hostname()
	return Config{
		Node: Node{
			ID:        host,
			DataDir:   "./mxgate-data",
			LogLevel:  "info",
			LogFormat: "text",
		},
		SMTP: SMTP{
			Listen:              []string{"127.0.0.1:2525"},
			Hostname:            host,
			AcceptDomains:       []string{},
			TrustedNetworks:     []string{},
			MaxMessageBytes:     26214400,
			MaxRecipients:       100,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 20,
			ReadTimeout:         Duration{Duration: 60 * time.Second},
			WriteTimeout:        Duration{Duration: 60 * time.Second},
			DataTimeout:         Duration{Duration: 10 * time.Minute},
			DrainTimeout:        Duration{Duration: 30 * time.Second},
			MaxLineLength:       65536,
			HardErrorLimit:      20,
			ProxyTrusted:        []string{},
		},
		Downstream: Downstream{
			Address: "127.0.0.1:2526",
			Timeout: Duration{Duration: 60 * time.Second},
			Helo:    host,
		},
		Scanner: Scanner{
			Policy: scanner.DefaultPolicy(),
			Local:  scanner.DefaultLocal(),
		},
		Store: Store{
			QuarantineRetention: Duration{Duration: 720 * time.Hour},
			LogRetention:        Duration{Duration: 720 * time.Hour},
			LogJournalMax:       256 << 20,
			LogJournalSync:      Duration{Duration: 100 * time.Millisecond},
		},
		Admin: Admin{
			Listen: "127.0.0.1:8025",
		},
		Cluster: Cluster{
			Interface:         "eth0",
			Instances:         []Instance{},
			VRID:              51,
			Priority:          100,
			AdvertInterval:    Duration{Duration: time.Second},
			StartState:        StartStateBackup,
			Preempt:           true,
			UnicastPeers:      []string{},
			Checksum:          "pseudo-header",
			GARPRepeat:        5,
			GARPRefresh:       Duration{Duration: 5 * time.Second},
			GARPMasterRefresh: Duration{Duration: 60 * time.Second},
			Track:             []Track{},
			TrackInterface:    true,
			Mode:              ModeActiveActive,
			Weight:            100,
			PeerListen:        "0.0.0.0:8026",
			MembershipTTL:     Duration{Duration: 3 * time.Second},
			Peers:             []Peer{},
		},
	}
}

// hostname falls back to "localhost" so that Default stays valid on a host
// whose name cannot be read or is unusable as a node id and SMTP name.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || !validNodeID(h) || !validHostname(h) {
		return "localhost"
	}
	return h
}
