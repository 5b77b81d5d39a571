package config

import "time"

// Upper bounds of the numeric settings (each section checks its own keys
// against them, validate_<section>.go). Each is far above what a real
// installation needs and far below what would exhaust a node: a value past
// one is a typo or a tampered file, and is refused naming the key and the
// bound, where it used to be accepted and then grow a node until the
// kernel killed it (scanner.workers: 100000000 reserved 22 GB).
const (
	// MaxMessageBytes bounds smtp.max_message_bytes: 1 GiB is 40 times
	// the usual 25 MB of the large providers; a message is spooled, parsed
	// and sent downstream whole.
	MaxMessageBytes = 1 << 30
	// MaxRecipients bounds smtp.max_recipients: 100 times the 100 that
	// RFC 5321 §4.5.3.1.8 asks a server to take, 10 times Postfix's
	// smtpd_recipient_limit; every recipient is mirrored and kept.
	MaxRecipients = 10_000
	// MaxConnections bounds smtp.max_connections (and with it
	// max_connections_per_ip): ten times C10k; each session costs a few
	// tens of KB, a downstream connection and two file descriptors.
	MaxConnections = 100_000
	// MaxLineLength bounds smtp.max_line_length: a line is held whole in
	// memory, per session; 1 MiB is far past any unwrapped HTML line.
	MaxLineLength = 1 << 20
	// MaxTimeout bounds every timeout (smtp read, write, data and drain,
	// downstream; the scanner's is scanner.MaxTimeout, the same): RFC 5321
	// §4.5.3.2 suggests minutes; an hour is beyond any real client or
	// server, and keeps a stop bounded.
	MaxTimeout = time.Hour
	// MaxRetention bounds store.quarantine_retention and
	// store.log_retention: ten years covers the longest legal retention
	// of business mail.
	MaxRetention = 10 * 365 * 24 * time.Hour
	// MaxWeight bounds cluster.weight, cluster.peers[].weight and the
	// revision's weights: shares are relative, 10 000 gives 0.01 %
	// steps, and the dispatcher's running sums stay far from overflow.
	MaxWeight = 10_000
	// MaxGARPRefresh bounds cluster.garp_refresh and
	// cluster.garp_master_refresh: an announcement an hour apart is the
	// sparsest that still finds a switch that forgot the VIP.
	MaxGARPRefresh = time.Hour
)
