package mailauth

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mxgate/mxgate/scanner"
)

func TestRemoveOwnResults(t *testing.T) {
	const id = "mx.example.org"
	const body = "\r\nAuthentication-Results: mx.example.org; in the body stays\r\n"
	tests := []struct {
		name, header, want string
	}{
		{"ours removed",
			"Authentication-Results: mx.example.org; spf=pass\r\nSubject: x\r\n",
			"Subject: x\r\n"},
		{"others kept",
			"Authentication-Results: mx.other.example; spf=pass\r\nSubject: x\r\n",
			"Authentication-Results: mx.other.example; spf=pass\r\nSubject: x\r\n"},
		{"case of name and id",
			"authentication-results: MX.Example.ORG; dkim=pass\r\nSubject: x\r\n",
			"Subject: x\r\n"},
		{"folded before the id",
			"Authentication-Results:\r\n\tmx.example.org;\r\n\tspf=pass smtp.mailfrom=a@b\r\nSubject: x\r\n",
			"Subject: x\r\n"},
		{"folded after the id, continuation lines go too",
			"Received: by a\r\nAuthentication-Results: mx.example.org 1;\r\n spf=pass\r\n dkim=pass\r\nReceived: by b\r\n",
			"Received: by a\r\nReceived: by b\r\n"},
		{"comment before the id",
			"Authentication-Results: (forged (nested)) mx.example.org; spf=pass\r\n",
			""},
		{"other whitespace before the id (a reader may trim it)",
			"Authentication-Results:\v\f\u00a0mx.example.org; spf=pass\r\nX: y\r\n",
			"X: y\r\n"},
		{"quoted id",
			"Authentication-Results: \"mx.example.org\"; spf=pass\r\n",
			""},
		{"blank before the colon",
			"Authentication-Results \t: mx.example.org; spf=pass\r\nX: y\r\n",
			"X: y\r\n"},
		{"a longer id is another",
			"Authentication-Results: mx.example.org.evil; spf=pass\r\nAuthentication-Results: mx.example.orgx; none\r\n",
			"Authentication-Results: mx.example.org.evil; spf=pass\r\nAuthentication-Results: mx.example.orgx; none\r\n"},
		{"a sub-domain id is another",
			"Authentication-Results: a.mx.example.org; spf=pass\r\n",
			"Authentication-Results: a.mx.example.org; spf=pass\r\n"},
		{"ARC results are not ours to remove",
			"ARC-Authentication-Results: i=1; mx.example.org; spf=pass\r\n",
			"ARC-Authentication-Results: i=1; mx.example.org; spf=pass\r\n"},
		{"bare LF",
			"Authentication-Results: mx.example.org; spf=pass\nSubject: x\n",
			"Subject: x\n"},
		{"several, mixed",
			"Authentication-Results: other; x\r\nAuthentication-Results: mx.example.org; y\r\nAuthentication-Results: mx.example.org;\r\n z\r\nAuthentication-Results: other2; w\r\n",
			"Authentication-Results: other; x\r\nAuthentication-Results: other2; w\r\n"},
		{"empty value kept (claims nothing)",
			"Authentication-Results:\r\nX: y\r\n",
			"Authentication-Results:\r\nX: y\r\n"},
		{"overlong field dropped",
			"Authentication-Results: other;" + strings.Repeat(" x", maxResultsField) + "\r\nX: y\r\n",
			"X: y\r\n"},
		{"long line before ours",
			"X-Long: " + strings.Repeat("a", 10000) + "\r\nAuthentication-Results: mx.example.org; y\r\n",
			"X-Long: " + strings.Repeat("a", 10000) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nl := "\r\n"
			if !strings.Contains(tt.header, "\r") {
				nl = "\n"
			}
			in := tt.header + nl + strings.TrimPrefix(body, "\r\n")
			got, err := io.ReadAll(RemoveOwnResults(strings.NewReader(in), id))
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want + nl + strings.TrimPrefix(body, "\r\n"); string(got) != want {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
	// A message that ends inside its header.
	got, _ := io.ReadAll(RemoveOwnResults(strings.NewReader("Subject: x\r\nAuthentication-Results: mx.example.org; y"), id))
	if string(got) != "Subject: x\r\n" {
		t.Errorf("no body: got %q", got)
	}
}

// Our own header is always recognised as ours, and removed, whatever went
// into its values; everything else of the message passes.
func FuzzRemoveOwnResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.example.org; spf=pass\r\nSubject: x\r\n\r\nbody"), "mx.example.org")
	f.Add([]byte("Authentication-Results:\r\n (c\\)) \"mx.example.org\" ; x\r\n\r\n"), "mx.example.org")
	f.Add([]byte("Authentication-Results: other; x\r\n\r\n"), "other")
	f.Fuzz(func(t *testing.T, msg []byte, id string) {
		out, err := io.ReadAll(RemoveOwnResults(bytes.NewReader(msg), id))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > len(msg) {
			t.Fatalf("output longer than input")
		}
		// Removing again changes nothing.
		again, _ := io.ReadAll(RemoveOwnResults(bytes.NewReader(out), id))
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		// No field claiming id survives in the header.
		hdr, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
		for _, fl := range fields(hdr) {
			if strings.EqualFold(strings.TrimRight(fl.name, " \t"), resultsField) && id != "" {
				if got, ok := authservIDOf(fl.value); ok && strings.EqualFold(got, id) && utf8.ValidString(id) && !strings.ContainsAny(id, "\r\n") {
					t.Fatalf("field %q claiming %q survived in %q", fl.value, id, out)
				}
			}
		}
	})
}

// pvalue never lets outside text end the property or the field, and a
// header built from any envelope is read back as ours.
func FuzzPvalue(f *testing.F) {
	f.Add("user@example.org")
	f.Add("\"a b\"@x;\r\nX: y")
	f.Add("(comment) @ ")
	f.Fuzz(func(t *testing.T, s string) {
		v := pvalue(s)
		if strings.ContainsAny(v, "\r\n;") && !strings.HasPrefix(v, "\"") {
			t.Fatalf("pvalue(%q) = %q unquoted with a separator", s, v)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] >= 0x7f {
				t.Fatalf("pvalue(%q) = %q has byte %#x", s, v, v[i])
			}
		}
		c := &Checker{id: "mx.example.org"}
		h := c.header([]string{"spf=pass smtp.mailfrom=" + v, "dkim=none"})
		checkFolding(t, h)
		msg := h + "\r\nSubject: x\r\n\r\nbody"
		out, _ := io.ReadAll(RemoveOwnResults(strings.NewReader(msg), "mx.example.org"))
		if string(out) != "Subject: x\r\n\r\nbody" {
			t.Fatalf("our header %q not removed: %q", h, out)
		}
	})
}

// The header reading of the checks (fields, From domain, DKIM tags) takes
// any bytes without panicking, and a From domain it returns is a host name.
func FuzzHeaderFields(f *testing.F) {
	f.Add([]byte("From: \"A\" <a@example.org>\r\nDKIM-Signature: v=1; d=example.org; s=sel\r\n\r\n"))
	f.Add([]byte("From: a@b, c@d\r\n\tx\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fs := fields(raw)
		if d, ok := fromDomain(fs); ok && !scanner.IsHostname(d) {
			t.Fatalf("from domain %q is no host name", d)
		}
		for _, fl := range fs {
			_ = dkimTag(fl.value, "s")
		}
		_ = orgDomain(string(raw))
	})
}

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// RemoveOwnResults streams: the first bytes of a message with a 20 MB
// header come out having read a few KiB of it, not the whole header (a
// gateway holding every header in memory is a gateway an attacker fills).
func TestRemoveOwnResultsStreams(t *testing.T) {
	line := "X-Filler: " + strings.Repeat("x", 90) + "\r\n"
	src := &countingReader{r: io.MultiReader(
		strings.NewReader("Authentication-Results: mx.example.org; spf=pass\r\n"),
		strings.NewReader(strings.Repeat(line, 200_000)),
		strings.NewReader("\r\nbody\r\n"),
	)}
	r := RemoveOwnResults(src, "mx.example.org")
	first := make([]byte, 100)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}
	if string(first[:10]) != "X-Filler: " {
		t.Errorf("first bytes %q, want the filler (our forged field removed)", first[:10])
	}
	if src.n > 16<<10 {
		t.Errorf("%d bytes read from the message for its first 100: the header is buffered", src.n)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !strings.HasSuffix(string(rest), "\r\n\r\nbody\r\n") || len(rest)+100 != 200_000*len(line)+len("\r\nbody\r\n") {
		t.Errorf("rest: %d bytes, %v", len(rest), err)
	}
}
