package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/testenv"
)

// TestCertPair: a certificate and key must be set together, readable, a
// PEM certificate and its own key; each problem names the key and its line.
func TestCertPair(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := testenv.CertFiles(t, dir, "mx.test")
	_, otherKey, _ := testenv.CertFiles(t, dir, "other.test")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's admin section starts at line 3, its key on line 7.
	doc := func(section, cert, key string) string {
		return "node: {id: n1}\n\n" + section + ":\n  listen: 127.0.0.1:8025\n  tls:\n    cert: " + cert + "\n    key: " + key + "\n"
	}
	tests := []struct {
		name string
		in   string
		want []string // substrings, all required; none = accepted
	}{
		{"admin pair", doc("admin", cert, key), nil},
		{"admin wrong key", doc("admin", cert, otherKey), []string{"admin.tls.key: " + otherKey + " is not the private key of " + cert, "(line 7)"}},
		{"admin garbage cert", doc("admin", garbage, key), []string{"admin.tls.cert: " + garbage + ": no PEM certificate", "(line 6)"}},
		{"admin key is a certificate", doc("admin", cert, cert), []string{"admin.tls.key: ", "is not the private key", "(line 7)"}},
		{"admin missing key file", doc("admin", cert, filepath.Join(dir, "none.key")), []string{"admin.tls.key: cannot read", "no such file", "(line 7)"}},
		{"admin key without cert", "admin:\n  tls: {key: " + key + "}\n", []string{"admin.tls.cert: required when admin.tls.key is set"}},
		{"admin cert without key", "admin:\n  tls: {cert: " + cert + "}\n", []string{"admin.tls.key: required when admin.tls.cert is set"}},
		{"admin directory", doc("admin", dir, key), []string{"admin.tls.cert: " + dir + " is not a regular file", "(line 6)"}},
		{"metrics auth without token", "admin:\n  metrics_auth: true\n", []string{"admin.metrics_auth: needs admin.token", "(line 2)"}},
		{"metrics auth with token", "admin:\n  token: secret\n  metrics_auth: true\n", nil},
		{"metrics auth not a bool", "admin:\n  metrics_auth: sometimes\n", []string{`admin.metrics_auth: want true or false, got "sometimes" (line 2)`}},
		{"smtp wrong key", "smtp:\n  tls:\n    cert: " + cert + "\n    key: " + otherKey + "\n", []string{"smtp.tls.key: " + otherKey + " is not the private key of " + cert, "(line 4)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c.Admin)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse: %v\nwant %q in it", err, w)
				}
			}
		})
	}
}

func TestAdminPlainRemote(t *testing.T) {
	tests := []struct {
		a    Admin
		want bool
	}{
		{Admin{Listen: "0.0.0.0:8025", Token: "t"}, true},
		{Admin{Listen: "198.18.0.1:8025", Token: "t", TLS: AdminTLS{Cert: "c", Key: "k"}}, false},
		{Admin{Listen: "127.0.0.1:8025"}, false},
		{Admin{Listen: "localhost:8025"}, false},
		{Admin{}, false},
	}
	for _, tt := range tests {
		if got := tt.a.PlainRemote(); got != tt.want {
			t.Errorf("%+v.PlainRemote() = %v, want %v", tt.a, got, tt.want)
		}
	}
}
