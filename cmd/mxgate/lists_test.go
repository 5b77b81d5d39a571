package main

import (
	"strings"
	"testing"
)

// Adding an entry twice says so and changes nothing (exit 0, as postconf -e
// with the value already set); a value that can never match is refused
// with the form to use instead.
func TestListsAddExistingAndNeverMatching(t *testing.T) {
	url, _ := adminServer(t)
	if out := mustRun(t, url, "lists", "add", "block", "@spam.example", "--comment", "ticket 42"); out != "added block @spam.example (global)\n" {
		t.Fatalf("first add: %q", out)
	}
	out := mustRun(t, url, "lists", "add", "block", "@SPAM.example", "--comment", "other")
	if !strings.HasPrefix(out, "already listed: block @spam.example (global), added ") || !strings.HasSuffix(out, `, comment "ticket 42"; nothing changed`+"\n") {
		t.Errorf("second add: %q", out)
	}
	if out := mustRun(t, url, "lists", "show"); strings.Contains(out, "other") || strings.Count(out, "@spam.example") != 1 {
		t.Errorf("the second add changed the lists:\n%s", out)
	}
	for _, tc := range []struct{ value, want string }{
		{"*@x.com", "wildcards are not supported: use @x.com for the domain or .x.com for it and its subdomains"},
		{"*.x.com", "use @x.com for the domain or .x.com for it and its subdomains"},
		{"192.0.2.*", "use the network 192.0.2.0/24"},
		{"<a@x.com>", "without angle brackets: a@x.com"},
		{"x.com", "bare domain: write @x.com for the domain or .x.com for it and its subdomains"},
	} {
		_, _, err := run(t, "lists", "add", "block", tc.value, "--admin", url, "--token", cliToken)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "(HTTP 400)") {
			t.Errorf("add %s: %v, want HTTP 400 with %q", tc.value, err, tc.want)
		}
	}
	if _, _, err := run(t, "lists", "add", "block", "@x.com", "--rcpt", "*@example.org", "--admin", url, "--token", cliToken); err == nil || !strings.Contains(err.Error(), "use @example.org for every recipient in the domain") {
		t.Errorf("add --rcpt *@example.org: %v", err)
	}
}
