package config

import (
	"strings"
	"testing"
)

// Every validation problem of a key written in the file names the key's
// line, in every section; a key the file does not hold gets none.
func TestValidationProblemsNameTheLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"list item", "smtp:\n  hostname: mx.example.org\n  accept_domains:\n    - example.org\n    - \"@bad.example\"\n",
			[]string{`smtp.accept_domains[1]: "@bad.example" is not a domain name (write example.org, or .example.org for its subdomains, without @) (line 5)`}},
		{"flow list item", "smtp:\n  accept_domains: [example.org, \"a b\"]\n",
			[]string{`smtp.accept_domains[1]: "a b" is not a domain name (write example.org, or .example.org for its subdomains, without @) (line 2)`}},
		{"scalar", "node:\n  id: n1\n\nsmtp:\n  max_recipients: 0\n",
			[]string{"smtp.max_recipients: must be positive, got 0 (line 5)"}},
		{"nested section", "smtp:\n  tls:\n    require: true\n",
			[]string{"smtp.tls.require: needs smtp.tls.cert and smtp.tls.key (line 3)"}},
		{"node", "node:\n  log_level: verbose\n",
			[]string{`node.log_level: "verbose" is not one of debug, info, warn, error (line 2)`}},
		{"downstream", "downstream:\n  address: \"mail:0\"\n",
			[]string{`downstream.address: "mail:0": port must be 1-65535 (line 2)`}},
		{"scanner section at its key", "scanner:\n  thresholds:\n    quarantine: 15\n    reject: 6\n",
			[]string{"scanner.thresholds: quarantine (15) must be below reject (6) (line 2)"}},
		{"scanner key", "scanner:\n  workers: -1\n",
			[]string{"scanner.workers: must be 0", "(line 2)"}},
		{"scanner rule", "scanner:\n  rules:\n    - \"OK_RULE header Subject =~ /x/ 1\"\n    - \"BAD_RULE hdr Subject =~ /x/ 1\"\n",
			[]string{`scanner.rules[1]: column 10: unknown kind "hdr"`, "(line 4)"}},
		{"scanner nested list", "scanner:\n  attachments:\n    blocked_types:\n      - application/zip\n      - exe\n",
			[]string{`scanner.attachments.blocked_types[1]: "exe" is not a MIME type (type/subtype or type/*) (line 5)`}},
		{"store", "store:\n  log_journal_max: 5\n",
			[]string{"store.log_journal_max: must be 1048576 (1 MiB) to 17179869184 (16 GiB) bytes, got 5 (line 2)"}},
		{"admin", "admin:\n  listen: \"0.0.0.0:8025\"\n  token: \"\"\n",
			[]string{"admin.token: required when admin.listen (0.0.0.0:8025) is not a loopback address (line 3)"}},
		{"cluster list of mappings", "cluster:\n  enabled: true\n  vip: 10.0.0.1/24\n  secret: 0123456789abcdef\n  peers:\n    - {id: n2, address: \"10.0.0.2:8026\"}\n    - id: n2\n      address: \"10.0.0.3:8026\"\n",
			[]string{`cluster.peers[1].id: "n2" is listed twice (line 7)`}},
		{"every problem", "smtp:\n  max_recipients: 0\n  hard_error_limit: 0\n",
			[]string{"smtp.max_recipients: must be positive, got 0 (line 2)", "smtp.hard_error_limit: must be 1-1000", "got 0 (line 3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse: %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// A problem of a key that is not in the file keeps its message as it is:
// no line to point at.
func TestProblemOfAbsentKeyHasNoLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"required by another key", "smtp:\n  tls:\n    key: /nonexistent/key.pem\n", "smtp.tls.cert: required when smtp.tls.key is set"},
		{"cluster default", "cluster:\n  enabled: true\n  vip: 10.0.0.1/24\n", "cluster.secret: required when the cluster is enabled (authenticates the peer API)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.want) && line != tt.want {
					t.Errorf("got %q, want %q", line, tt.want)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want %q", err, tt.want)
			}
		})
	}
}

// The README's Postfix example: ".example.org" is every subdomain, as in
// Postfix's relay_domains.
func TestAcceptDomainsSubdomainForm(t *testing.T) {
	tests := []struct {
		name, domains string
		bad           string // "" = accepted
	}{
		{"README example", "[example.org, .example.org]", ""},
		{"subdomains only", "[.example.org]", ""},
		{"trailing dot", "[.Example.ORG.]", ""},
		{"only a dot", "[\".\"]", `smtp.accept_domains[0]: "" is not a domain name`}, // the root's dot is trimmed first
		{"two dots", "[..example.org]", `smtp.accept_domains[0]: "..example.org" is not a domain name`},
		{"at sign", "[\"@example.org\"]", `smtp.accept_domains[0]: "@example.org" is not a domain name`},
		{"wildcard", "[\"*.example.org\"]", `smtp.accept_domains[0]: "*.example.org" is not a domain name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("smtp:\n  accept_domains: " + tt.domains + "\n"))
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad+" (write example.org, or .example.org for its subdomains, without @) (line 2)")):
				t.Errorf("Parse: %v, want %q with its line", err, tt.bad)
			}
		})
	}
}
