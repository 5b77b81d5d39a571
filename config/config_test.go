package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.Node.ID == "" || c.SMTP.Hostname == "" || c.Downstream.Helo != c.SMTP.Hostname {
		t.Errorf("host name defaults not filled: id=%q hostname=%q helo=%q", c.Node.ID, c.SMTP.Hostname, c.Downstream.Helo)
	}
	if c.SMTP.ReadTimeout.Duration != 60*time.Second || c.SMTP.DataTimeout.Duration != 10*time.Minute {
		t.Errorf("timeouts: read %s data %s", c.SMTP.ReadTimeout, c.SMTP.DataTimeout)
	}
	if c.Cluster.Enabled {
		t.Error("cluster enabled by default")
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) differs from Default():\n%+v\n%+v", in, c, Default())
		}
	}
}

func TestParseSpecExample(t *testing.T) {
	c := mustLoad(t, "testdata/spec.yaml")
	if c.Node.ID != "n1" || c.SMTP.Hostname != "mx.example.org" {
		t.Errorf("node.id %q smtp.hostname %q", c.Node.ID, c.SMTP.Hostname)
	}
	if got := c.SMTP.AcceptDomains; len(got) != 1 || got[0] != "example.org" {
		t.Errorf("accept_domains = %q", got)
	}
	if c.Scanner.Thresholds != (scanner.Thresholds{Quarantine: 6, Reject: 15}) {
		t.Errorf("thresholds = %+v", c.Scanner.Thresholds)
	}
	if c.Cluster.VIP != "198.18.0.100/24" || c.Cluster.AdvertInterval.Duration != time.Second {
		t.Errorf("cluster = %+v", c.Cluster)
	}
	if c.Downstream.Helo != "mx.example.org" {
		t.Errorf("downstream.helo = %q, want smtp.hostname", c.Downstream.Helo)
	}
}

// The reference file must document every key: a key missing there is a key
// an administrator cannot find.
func TestExampleCoversEveryKey(t *testing.T) {
	c := mustLoad(t, "example.yaml")
	if c.Node.ID != "n1" {
		t.Errorf("node.id = %q", c.Node.ID)
	}
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range keys(reflect.TypeFor[Config](), "") {
		if !hasKey(doc, strings.Split(key, ".")) {
			t.Errorf("example.yaml lacks %s", key)
		}
	}
}

func keys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("yaml") == ",inline" {
			out = append(out, keys(f.Type, prefix)...)
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" {
			continue // not read from a file (Node.File)
		}
		name := prefix + tag
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			out = append(out, keys(f.Type, name+".")...)
		} else {
			out = append(out, name)
		}
	}
	return out
}

func hasKey(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && hasKey(sub, path[1:])
}

func mustLoad(t *testing.T, path string) Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return c
}

func TestParseValues(t *testing.T) {
	in := `
node: {id: edge-1, log_level: debug, log_format: json}
smtp:
  hostname: MX.Example.ORG
  accept_domains: [Example.ORG, "sub.example.net."]
  trusted_networks: [10.0.0.0/8, "2001:db8::/32"]
  read_timeout: 1m30s
  proxy_protocol: true
  proxy_trusted: [192.0.2.0/24]
scanner:
  thresholds: {quarantine: 5.5, reject: 10}
  attachments: {blocked_extensions: [.EXE, scr], blocked_types: [Application/X-MSDownload, "image/*"], double_extensions: false}
  rules: ['SUBJ_X header Subject =~ /x/ 1']
store: {redis: "redis://:pw@10.0.0.5:6379/0", quarantine_retention: 24h}
cluster:
  enabled: true
  vip: 198.18.0.100/24
  advert_interval: 100ms
  unicast_peers: [10.0.0.2, 10.0.0.3]
  mode: active-passive
  secret: s3cret-s3cret-s3cret
`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node.id", c.Node.ID, "edge-1"},
		{"node.log_format", c.Node.LogFormat, "json"},
		{"accept_domains lower-cased", c.SMTP.AcceptDomains, []string{"example.org", "sub.example.net"}},
		{"read_timeout", c.SMTP.ReadTimeout.Duration, 90 * time.Second},
		{"untouched default", c.SMTP.MaxRecipients, 100},
		{"helo follows hostname", c.Downstream.Helo, "MX.Example.ORG"},
		{"extensions normalised", c.Scanner.Attachments.BlockedExtensions, []string{"exe", "scr"}},
		{"types lower-cased", c.Scanner.Attachments.BlockedTypes, []string{"application/x-msdownload", "image/*"}},
		{"double_extensions", c.Scanner.Attachments.DoubleExtensions, false},
		{"scan_archives default kept", c.Scanner.Attachments.ScanArchives, true},
		{"thresholds", c.Scanner.Thresholds, scanner.Thresholds{Quarantine: 5.5, Reject: 10}},
		{"on_limit default", c.Scanner.OnLimit, scanner.ActionQuarantine},
		{"retention", c.Store.QuarantineRetention.Duration, 24 * time.Hour},
		{"log retention default", c.Store.LogRetention.Duration, 720 * time.Hour},
		{"log journal default", c.Store.LogJournalMax, int64(256 << 20)},
		{"log journal sync default", c.Store.LogJournalSync.Duration, 100 * time.Millisecond},
		{"advert", c.Cluster.AdvertInterval.Duration, 100 * time.Millisecond},
		{"priority default", c.Cluster.Priority, 100},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseAnchorsAndNulls(t *testing.T) {
	in := `
smtp:
  listen: &l ["127.0.0.1:2525", "[::1]:2525"]
  tls:
  read_timeout: &t 5s
downstream: {address: "mail.internal:25", helo: "[192.0.2.1]", timeout: *t}
cluster: {unicast_peers: *l}
`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Downstream.Timeout.Duration != 5*time.Second || len(c.SMTP.Listen) != 2 {
		t.Errorf("aliases not followed: %+v %+v", c.Downstream, c.SMTP.Listen)
	}
	if c.SMTP.TLS != (TLS{}) {
		t.Errorf("null tls section = %+v", c.SMTP.TLS)
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Line 12 holds the bad duration.
	line12 := "node:\n  id: n1\n\n\n\n\n\n\n\n\nsmtp:\n  read_timeout: 5x\n"
	tests := []struct {
		name string
		in   string
		want []string // substrings, all required
	}{
		{"duration with line", line12, []string{`smtp.read_timeout: invalid duration "5x" (line 12)`}},
		{"duration not scalar", "scanner:\n  timeout: [1s]\n", []string{"scanner.timeout: want a duration like 30s, got a list (line 2)"}},
		{"unknown top key", "nodes:\n  id: x\n", []string{"nodes: unknown key (line 1)"}},
		{"unknown nested key", "smtp:\n  listen: []\n  lisen: [x]\n", []string{"smtp.lisen: unknown key (line 3)"}},
		{"unknown deep key", "scanner:\n  attachments:\n    blocked: []\n", []string{"scanner.attachments.blocked: unknown key (line 3)"}},
		{"every unknown key", "a: 1\nsmtp: {b: 2}\n", []string{"a: unknown key (line 1)", "smtp.b: unknown key (line 2)"}},
		{"repeated key", "smtp:\n  hostname: a\n  hostname: b\n", []string{"smtp.hostname: key repeated (lines 2 and 3)"}},
		{"merge key", "x: &x {hostname: a}\nsmtp:\n  <<: *x\n", []string{"smtp.<<: merge keys are not supported", "x: unknown key (line 1)"}},
		{"integer", "smtp:\n  max_recipients: lots\n", []string{`smtp.max_recipients: want an integer, got "lots" (line 2)`}},
		{"integer overflow", "smtp:\n  max_message_bytes: 99999999999999999999999\n", []string{"smtp.max_message_bytes: want an integer"}},
		{"bool", "smtp:\n  proxy_protocol: maybe\n", []string{`smtp.proxy_protocol: want true or false, got "maybe" (line 2)`}},
		{"number", "scanner:\n  thresholds: {quarantine: high}\n", []string{`scanner.thresholds.quarantine: want a number, got "high" (line 2)`}},
		{"list wanted", "smtp:\n  listen: \"127.0.0.1:25\"\n", []string{"smtp.listen: want a list of strings, got a single value (line 2)"}},
		{"list of lists", "smtp:\n  listen:\n    - [a]\n", []string{"smtp.listen: want a list of strings, got a list in it (line 3)"}},
		{"string wanted", "smtp:\n  hostname: {a: b}\n", []string{"smtp.hostname: want a string, got a mapping (line 2)"}},
		{"section not mapping", "smtp: 5\n", []string{"smtp: want a mapping of keys, got a single value (line 1)"}},
		{"document not mapping", "- a\n", []string{"the document must be a mapping of sections, got a list (line 1)"}},
		{"two documents", "node: {}\n---\nsmtp: {}\n", []string{"only one YAML document is allowed (second one at line 2)"}},
		{"yaml syntax", "smtp:\n  listen: [\n", []string{"parse: yaml:"}},
		{"non-scalar key", "? [a]\n: 1\n", []string{"the key must be a plain name, got a list (line 1)"}},

		// Validation: every problem names its key.
		{"listen not host:port", "smtp: {listen: [\"127.0.0.1\"]}\n", []string{`smtp.listen[0]: "127.0.0.1" is not host:port`}},
		{"listen bad port", "smtp: {listen: [\"127.0.0.1:99999\"]}\n", []string{"smtp.listen[0]:", "port must be 0-65535"}},
		{"listen empty", "smtp: {listen: []}\n", []string{"smtp.listen: at least one host:port is required"}},
		{"hostname", "smtp: {hostname: \"mx example\"}\n", []string{`smtp.hostname: "mx example" is not a host name`}},
		{"accept domain", "smtp: {accept_domains: [ok.example, \"@bad.example\"]}\n", []string{`smtp.accept_domains[1]: "@bad.example" is not a domain name`}},
		{"trusted cidr", "smtp: {trusted_networks: [10.0.0.0/8, 10.0.0.1, 300.0.0.0/8]}\n", []string{`smtp.trusted_networks[1]: "10.0.0.1" is not a CIDR (a single address is written with /32`, `smtp.trusted_networks[2]: "300.0.0.0/8" is not a CIDR`}},
		{"limits positive", "smtp: {max_message_bytes: 0, max_recipients: -1, max_connections: 0, max_connections_per_ip: 0}\n", []string{"smtp.max_message_bytes: must be positive, got 0", "smtp.max_recipients: must be positive, got -1", "smtp.max_connections: must be positive", "smtp.max_connections_per_ip: must be positive"}},
		{"timeouts positive", "smtp: {read_timeout: 0s, data_timeout: -1s}\n", []string{"smtp.read_timeout: must be a positive duration, got 0s", "smtp.data_timeout: must be a positive duration"}},
		{"line length", "smtp: {max_line_length: 998}\n", []string{"smtp.max_line_length: must be at least 1000"}},
		{"hard error limit low", "smtp: {hard_error_limit: 0}\n", []string{"smtp.hard_error_limit: must be 1-1000", "got 0"}},
		{"hard error limit high", "smtp: {hard_error_limit: 1001}\n", []string{"smtp.hard_error_limit: must be 1-1000", "got 1001"}},
		{"tls cert without key", "smtp: {tls: {cert: " + cert + "}}\n", []string{"smtp.tls.key: required when smtp.tls.cert is set"}},
		{"tls key without cert", "smtp: {tls: {key: " + cert + "}}\n", []string{"smtp.tls.cert: required when smtp.tls.key is set"}},
		{"tls unreadable", "smtp: {tls: {cert: " + cert + ", key: " + filepath.Join(dir, "nokey.pem") + "}}\n", []string{"smtp.tls.key: cannot read", "no such file"}},
		{"tls require without cert", "smtp: {tls: {require: true}}\n", []string{"smtp.tls.require: needs smtp.tls.cert and smtp.tls.key"}},
		{"proxy without trusted", "smtp: {proxy_protocol: true}\n", []string{"smtp.proxy_trusted: required when smtp.proxy_protocol is true"}},
		{"proxy trusted cidr", "smtp: {proxy_trusted: [lb]}\n", []string{`smtp.proxy_trusted[0]: "lb" is not a CIDR`}},
		{"downstream required", "downstream: {address: \"\"}\n", []string{"downstream.address: required"}},
		{"downstream port", "downstream: {address: \"mail:0\"}\n", []string{"downstream.address:", "port must be 1-65535"}},
		{"downstream no host", "downstream: {address: \":25\"}\n", []string{"downstream.address:", "the host must be"}},
		{"downstream helo", "downstream: {helo: \"bad helo\"}\n", []string{`downstream.helo: "bad helo" is not a host name`}},
		{"log level", "node: {log_level: verbose}\n", []string{`node.log_level: "verbose" is not one of debug, info, warn, error`}},
		{"log format", "node: {log_format: xml}\n", []string{`node.log_format: "xml" is not one of text, json`}},
		{"node id", "node: {id: \"a b\"}\n", []string{`node.id: "a b" is not a node id`}},
		{"data dir", "node: {data_dir: \"\"}\n", []string{"node.data_dir: required"}},
		{"thresholds order", "scanner: {thresholds: {quarantine: 15, reject: 6}}\n", []string{"scanner.thresholds: quarantine (15) must be below reject (6)"}},
		{"thresholds nan", "scanner: {thresholds: {quarantine: .nan}}\n", []string{"scanner.thresholds.quarantine: must be a finite number"}},
		{"workers", "scanner: {workers: -1, queue: -2}\n", []string{"scanner.workers: must be 0", "scanner.queue: must be 0 or more"}},
		{"clamd scheme", "scanner: {clamd: \"http://x:3310\"}\n", []string{"scanner.clamd:", "want tcp://host:port or unix:///path"}},
		{"clamd unix", "scanner: {clamd: \"unix://\"}\n", []string{"scanner.clamd:", "want unix:///absolute/path"}},
		{"rspamd port", "scanner: {rspamd: \"http://rspamd\"}\n", []string{"scanner.rspamd:", "want host:port"}},
		{"spamd", "scanner: {spamd: \"spamd:783\"}\n", []string{"scanner.spamd:"}},
		{"virus action", "scanner: {virus_action: drop}\n", []string{`scanner.virus_action: "drop" is not one of quarantine, reject`}},
		{"on limit", "scanner: {on_limit: deliver}\n", []string{`scanner.on_limit: "deliver" is not one of quarantine, tempfail, reject`}},
		{"on limit empty", "scanner: {on_limit: \"\"}\n", []string{`scanner.on_limit: "" is not one of quarantine, tempfail, reject`}},
		{"blocked type", "scanner: {attachments: {blocked_types: [exe]}}\n", []string{`scanner.attachments.blocked_types[0]: "exe" is not a MIME type`}},
		{"blocked ext", "scanner: {attachments: {blocked_extensions: [\"a/b\"]}}\n", []string{"scanner.attachments.blocked_extensions[0]:"}},
		{"mime limits", "scanner: {max_mime_depth: 0, max_mime_parts: 0}\n", []string{"scanner.max_mime_depth: must be positive", "scanner.max_mime_parts: must be positive"}},
		{"redis scheme", "store: {redis: \"http://h:6379\"}\n", []string{`store.redis: want a redis://`, `got scheme "http"`}},
		{"redis no host", "store: {redis: \"redis://\"}\n", []string{"store.redis: the URL has no host"}},
		{"retention", "store: {quarantine_retention: 0s, log_retention: 0s}\n", []string{"store.quarantine_retention: must be a positive duration", "store.log_retention: must be a positive duration"}},
		{"log journal too small", "store: {log_journal_max: 1000}\n", []string{"store.log_journal_max: must be 1048576 (1 MiB) to 17179869184 (16 GiB) bytes, got 1000"}},
		{"log journal too large", "store: {log_journal_max: 17179869185}\n", []string{"store.log_journal_max: must be", "got 17179869185"}},
		{"admin token", "admin: {listen: \"0.0.0.0:8025\"}\n", []string{"admin.token: required when admin.listen (0.0.0.0:8025) is not a loopback address"}},
		{"admin token all interfaces", "admin: {listen: \":8025\"}\n", []string{"admin.token: required"}},
		{"admin listen", "admin: {listen: \"8025\"}\n", []string{`admin.listen: "8025" is not host:port`}},
		{"cluster", "cluster: {enabled: true, interface: \"\", vrid: 0, vip: 198.18.0.100, priority: 0, advert_interval: 5ms, unicast_peers: [peer1], mode: both, weight: -1, peer_listen: x, secret: \"\"}\n", []string{
			"cluster.interface: required",
			"cluster.vrid: must be 1-255, got 0",
			`cluster.vip: "198.18.0.100" is not address/prefix`,
			"cluster.priority: must be 1-254 (255 only for the address owner), got 0",
			"cluster.advert_interval: must be 10ms to 40.95s, got 5ms",
			`cluster.unicast_peers[0]: "peer1" is not an IPv4 address like the VIP`,
			`cluster.mode: "both" is not one of active-active, active-passive`,
			"cluster.weight: must be 0 or more",
			`cluster.peer_listen: "x" is not host:port`,
			"cluster.secret: required when the cluster is enabled",
		}},
		{"cluster bounds", "cluster: {enabled: true, vip: 10.0.0.1/24, vrid: 256, priority: 256, advert_interval: 41s, secret: s}\n", []string{"cluster.vrid: must be 1-255, got 256", "cluster.priority:", "got 256", "cluster.advert_interval: must be 10ms to 40.95s, got 41s"}},
		{"cluster vrrp keys", "cluster: {enabled: true, vip: 2001:db8::1/64, secret: s, source: 2001:db8::2, checksum: rfc, garp_repeat: 0, garp_refresh: -1s, garp_master_refresh: 10ms, preempt_delay: -1s, notify: \" \"}\n", []string{
			`cluster.source: "2001:db8::2": an IPv6 source must be the interface's link-local address (fe80::/10)`,
			`cluster.checksum: "rfc" is not one of pseudo-header, message`,
			"cluster.garp_repeat: must be 1-100, got 0",
			"cluster.garp_refresh: must be 0 (none) or more, got -1s",
			"cluster.preempt_delay: must be 0 to 1h, got -1s",
			"cluster.garp_master_refresh: must be 0 (never) or at least 1s, got 10ms",
			"cluster.notify: is blank",
		}},
		{"cluster ipv6 families", "cluster: {enabled: true, vip: fd00:198:18::100/64, secret: s, source: 198.18.0.11, unicast_peers: [\"fe80::2\", 198.18.0.12]}\n", []string{
			`cluster.source: "198.18.0.11" is not an IPv6 address like the VIP`,
			`cluster.unicast_peers[1]: "198.18.0.12" is not an IPv6 address like the VIP`,
			`cluster.peer_listen: "0.0.0.0:8026": with an IPv6 VIP the VRRP source is link-local`,
		}},
		{"cluster peers", "node: {id: n1}\ncluster: {enabled: true, vip: 10.0.0.1/24, secret: short, membership_ttl: 10ms, peers: [{id: n1, address: x, weight: -1}, {id: n2, address: \"10.0.0.2:8026\"}, {id: n2, address: \"10.0.0.3:8026\"}, {id: n4, adress: \"10.0.0.4:8026\"}, n5]}\n", []string{
			"cluster.peers[3].adress: unknown key (line 2)",
			"cluster.peers[4]: want a mapping of keys, got a single value (line 2)",
		}},
		{"cluster peer values", "node: {id: n1}\ncluster: {enabled: true, vip: 10.0.0.1/24, secret: short, membership_ttl: 10ms, peers: [{id: n1, address: x, weight: -1}, {id: n2, address: \"10.0.0.2:8026\"}, {id: n2, address: \"10.0.0.3:8026\"}]}\n", []string{
			"cluster.secret: too short: at least 16 characters",
			"cluster.membership_ttl: must be 300ms to 5m, got 10ms",
			`cluster.peers[0].id: "n1" is this node (node.id)`,
			`cluster.peers[0].address: "x" is not host:port`,
			"cluster.peers[0].weight: must be 0 or more, got -1",
			`cluster.peers[2].id: "n2" is listed twice`,
		}},
		{"simulated delay", "scanner: {simulated_delay: -1s}\n", []string{"scanner.simulated_delay: must be 0 to 1m, got -1s"}},
		{"cluster centiseconds", "cluster: {enabled: true, vip: 10.0.0.1/24, advert_interval: 15ms, secret: s}\n", []string{"cluster.advert_interval: must be a whole number of centiseconds"}},
		{"cluster vip required", "cluster: {enabled: true, vip: \"\", secret: s}\n", []string{"cluster.vip: required when the cluster is enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Default()
	c.SMTP.Listen = []string{"nope"}
	c.Scanner.VirusAction = "x"
	c.Admin.Listen = "10.0.0.1:8025"
	err := c.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("want 3 joined errors, got %v", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	cert, key, _ := testenv.CertFiles(t, t.TempDir(), "mx.test")
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"tls pair", func(c *Config) { c.SMTP.TLS = TLS{Cert: cert, Key: key, Require: true} }},
		{"admin tls", func(c *Config) {
			c.Admin = Admin{Listen: "0.0.0.0:8025", Token: "t", TLS: AdminTLS{Cert: cert, Key: key}, MetricsAuth: true}
		}},
		{"admin tls on loopback without token", func(c *Config) { c.Admin = Admin{Listen: "127.0.0.1:8025", TLS: AdminTLS{Cert: cert, Key: key}} }},
		{"owner priority", func(c *Config) {
			c.Cluster = Cluster{Enabled: true, Interface: "eth0", VRID: 255, VIP: "198.18.0.1/32", Priority: 255,
				AdvertInterval: Duration{Duration: 40950 * time.Millisecond}, Mode: "active-active", PeerListen: ":8026",
				Checksum: "message", StartState: StartStateMaster, Preempt: true, GARPRepeat: 1, Source: "198.18.0.2", UnicastPeers: []string{"198.18.0.3"},
				Secret: "0123456789abcdef", MembershipTTL: Duration{Duration: time.Second},
				Peers: []Peer{{ID: "n2", Address: "198.18.0.3:8026", Weight: 50}}}
		}},
		{"cluster disabled ignores cluster keys", func(c *Config) { c.Cluster = Cluster{VRID: 999, Mode: "?"} }},
		{"admin with token", func(c *Config) { c.Admin = Admin{Listen: "0.0.0.0:8025", Token: "t"} }},
		{"admin on localhost", func(c *Config) { c.Admin = Admin{Listen: "localhost:8025"} }},
		{"admin on ::1", func(c *Config) { c.Admin = Admin{Listen: "[::1]:8025"} }},
		{"admin off", func(c *Config) { c.Admin = Admin{} }},
		{"redis urls", func(c *Config) { c.Store.Redis = "redis+cluster://h1:6379,h2:6379" }},
		{"rediss", func(c *Config) { c.Store.Redis = "rediss://user:pw@h:6380/1" }},
		{"sentinel", func(c *Config) { c.Store.Redis = "redis-sentinel://h:26379/mymaster" }},
		{"engines", func(c *Config) {
			c.Scanner.Clamd, c.Scanner.Rspamd, c.Scanner.Spamd = "unix:///run/clamd.sock", "http://127.0.0.1:11333", "tcp://[::1]:783"
		}},
		{"listen any", func(c *Config) { c.SMTP.Listen = []string{":25", "[::]:25", "127.0.0.1:0"} }},
		{"proxy", func(c *Config) { c.SMTP.ProxyProtocol, c.SMTP.ProxyTrusted = true, []string{"10.0.0.0/8"} }},
		{"negative threshold", func(c *Config) { c.Scanner.Thresholds = scanner.Thresholds{Quarantine: -1, Reject: 0} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// A password in the Redis URL must not end up in logs through the error.
func TestRedisPasswordNotEchoed(t *testing.T) {
	c := Default()
	c.Store.Redis = "http://user:hunter2@h:6379"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
	c.Store.Redis = "redis://user:hunter2@h:6379/%zz"
	err = c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestDurationMarshal(t *testing.T) {
	b, err := json.Marshal(struct{ D Duration }{Duration{Duration: 90 * time.Second}})
	if err != nil || string(b) != `{"D":"1m30s"}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var back struct{ D Duration }
	if err := json.Unmarshal(b, &back); err != nil || back.D.Duration != 90*time.Second {
		t.Fatalf("json back = %v, %v", back.D, err)
	}
	y, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(y)
	if err != nil {
		t.Fatalf("Default re-parse: %v\n%s", err, y)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Default does not round-trip through YAML")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus: unknown key (line 1)") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/spec.yaml", "example.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("smtp:\n  read_timeout: 5x\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("x: &x {hostname: a}\nsmtp:\n  <<: *x\n"))
	f.Add([]byte("cluster: {enabled: true, vip: 10.0.0.1/24, secret: s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			// Whatever parses must be valid: Parse promises it.
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted an invalid config: %v", verr)
			}
		}
	})
}
