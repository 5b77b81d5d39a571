package scanner

import (
	"context"
	"strings"
	"testing"
)

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		`VIAGRA header Subject =~ /v[i1]agra/i 3.5`,
		`NO_DATE header Date !~ /./ 1`,
		`LOTTERY body /you (have )?won/ism -0.5`,
		`PATH rawbody /a\/b c/ 2e0`,
		`R hdr Subject =~ /x/ 1`,
		`R body /a(b/ 1`,
		`R body /x/ 0x1p-2`,
		"R\tbody\t/\t/\t1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "column ") {
				t.Fatalf("error without column: %v", err)
			}
			return
		}
		out := r.String()
		r2, err := ParseRule(out)
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, out, err)
		}
		if !sameRule(r, r2) || r2.String() != out {
			t.Fatalf("%q → %q → %q", s, out, r2.String())
		}
	})
}

// FuzzWalk feeds arbitrary bytes to the MIME and archive walker with small
// limits: it must not panic, must stay within the limits, and must always
// see the raw bytes.
func FuzzWalk(f *testing.F) {
	f.Add([]byte(textMsg("hello " + eicarText)))
	f.Add([]byte(multipartMsg(textPart("a"), qpPart("text/html; charset=iso-8859-1", "caf\xe9 "+gtubeText))))
	f.Add([]byte(multipartMsg(nestedPart("n1", nestedPart("n2", textPart("deep"))))))
	f.Add([]byte(multipartMsg(b64Part("application/zip", `attachment; filename*=utf-8''a%20b.zip`,
		zipOf(f, zipFile{name: "x.exe", data: []byte(eicarText)}, zipFile{name: "in.zip", data: zipOf(f, zipFile{name: "y.js", data: []byte("z")})})))))
	f.Add([]byte(crlf(stdHeader + "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKYm9keQo=\n")))
	f.Add([]byte(crlf(stdHeader + "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nx\n--d--\n")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte(" bad: first line\r\n"))

	lim := walkLimits{
		maxDepth: 3, maxParts: 20, maxEntries: 10, maxArchiveBytes: 64 << 10,
		scanArchives: true, wantText: true, wantRaw: true,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &parsed{msg: &Message{}}
		if err := walk(context.Background(), strings.NewReader(string(data)), lim, newScratch(), p); err != nil {
			t.Fatalf("walk: %v", err)
		}
		if p.parts > lim.maxParts || p.depth > lim.maxDepth {
			t.Fatalf("limits: %d parts, depth %d", p.parts, p.depth)
		}
		if p.archiveEntries > lim.maxEntries || p.archiveBytes > lim.maxArchiveBytes {
			t.Fatalf("archive limits: %d entries, %d bytes", p.archiveEntries, p.archiveBytes)
		}
		if p.size != int64(len(data)) {
			t.Fatalf("raw scan saw %d of %d bytes", p.size, len(data))
		}
		if len(p.text) > maxRuleText || len(p.raw) > maxRuleRaw {
			t.Fatalf("rule buffers %d %d", len(p.text), len(p.raw))
		}
		if strings.Contains(string(data), eicarText) && p.rawFound&patEICAR == 0 {
			t.Fatal("EICAR in the raw bytes not found")
		}
		// The checks and the merge run on whatever the walker made of it.
		e := fuzzEngine
		var results []result
		for _, c := range e.checks {
			r, err := c.Check(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, r)
		}
		v := merge(&e.opts, results)
		for _, h := range v.Headers() {
			if strings.ContainsAny(strings.ReplaceAll(h, "\r\n\t", ""), "\r\n") {
				t.Fatalf("header %q", h)
			}
		}
	})
}

// fuzzEngine is built once; it is only read.
var fuzzEngine = func() *engine {
	o := DefaultOptions()
	o.Rules = []string{`S header Subject =~ /x/ 1`, `B body /caf/ 1`, `R rawbody /zz/ 1`}
	e, err := newEngine(o)
	if err != nil {
		panic(err)
	}
	return e
}()

// FuzzRulePrefilter checks that the literal prefilter never skips a regex
// that matches.
func FuzzRulePrefilter(f *testing.F) {
	f.Add("bitcoin|wallet address", "i", []byte("Send BITCOIN now"))
	f.Add("v[i1]agra", "", []byte("cheap v1agra"))
	f.Add("(?:ab)+cd{2,}", "i", []byte("xxABABCDD"))
	f.Add("kiss", "i", []byte("\u212aiss"))
	f.Add("caf\u00e9", "", []byte("CAF\u00e9"))
	f.Add("a\\x{fffd}b", "", []byte("a\xffb"))
	f.Fuzz(func(t *testing.T, pattern, flags string, text []byte) {
		r, err := ParseRule("R body /" + pattern + "/" + flags + " 1")
		if err != nil {
			return
		}
		pt := prefilterText{src: text}
		if r.re.Match(text) && !pt.mayMatch(r.pre) {
			t.Fatalf("/%s/%s matches %q but the prefilter %q skips it", pattern, flags, text, r.pre)
		}
	})
}
