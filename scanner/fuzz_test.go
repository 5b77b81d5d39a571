package scanner

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"runtime"
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
	f.Add([]byte(multipartMsg(b64Part("application/gzip", `attachment; filename="a.tar.gz"`,
		gzipOf(f, "a.tar", tarOf(f, tarFile{"x.exe", []byte(eicarText)}, tarFile{"in.zip", zipOf(f, zipFile{name: "y.js", data: []byte("z")})}))))))
	f.Add([]byte(textMsg("see\n" + uuencode("a.exe", []byte(eicarText)) + "bye")))
	f.Add([]byte(crlf("Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=a; boundary=b\nContent-Transfer-Encoding: 7bit\n" +
		"Content-Transfer-Encoding: base64\nno field\n\n--b\n\nx\n--b--\n")))

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
		v := merge(&e.opts, results, nil)
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

// FuzzWalkAmbiguous builds messages whose header gives Content-Type,
// Content-Transfer-Encoding and Content-Disposition twice, with fuzzed
// values and body. An independent reading of each combination (first or
// last of each field, with the standard library's parsers) says whether a
// client could see EICAR; if one could, the scanner must have found it or
// report a limit. And no panic, no reading past maxReadings, no allocation
// that grows beyond the message.
func FuzzWalkAmbiguous(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	mp := "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(eicarText) + "\r\n--b--\r\n"
	f.Add("text/plain", "multipart/mixed; boundary=b", "7bit", "7bit", "inline", "attachment; filename=a.exe", []byte(mp))
	f.Add("multipart/mixed; boundary=b", "text/plain", "", "", "", "", []byte(mp))
	f.Add("application/octet-stream", "application/octet-stream", "7bit", "base64", "", "", []byte(b64(eicarText)))
	f.Add("text/plain", "text/plain", "base64", "8bit", "", "", []byte(b64(eicarText)))
	f.Add("multipart/mixed; boundary=x; boundary=b", "text/plain", "7bit", "7bit", "", "", []byte(mp))
	f.Add("multipart/mixed; boundary=b", "multipart/mixed; boundary=c", "", "", "", "", []byte(strings.ReplaceAll(mp, "--b", "--c")))
	f.Add("text/plain; charset=\"a", "multipart/alternative; boundary=\"b\"", "x-uuencode", "base64", "attachment; filename*=utf-8''%41.exe", "", []byte(mp))

	lim := walkLimits{
		maxDepth: 4, maxParts: 30, maxEntries: 10, maxArchiveBytes: 64 << 10,
		scanArchives: true, wantText: true, wantRaw: true,
	}
	f.Fuzz(func(t *testing.T, ct1, ct2, cte1, cte2, cd1, cd2 string, body []byte) {
		field := func(k, v string) string {
			// One field per value: line breaks would make it several.
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			return k + ": " + v + "\r\n"
		}
		msg := "From: a@example.com\r\n" + field("Content-Type", ct1) + field("Content-Type", ct2) +
			field("Content-Transfer-Encoding", cte1) + field("Content-Transfer-Encoding", cte2) +
			field("Content-Disposition", cd1) + field("Content-Disposition", cd2) + "\r\n" + string(body)

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := &parsed{msg: &Message{}}
		if err := walk(context.Background(), strings.NewReader(msg), lim, newScratch(), p); err != nil {
			t.Fatalf("walk: %v", err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(64*len(msg))+8<<20 {
			t.Fatalf("%d bytes allocated for a %d-byte message", alloc, len(msg))
		}
		if p.readings > maxReadings || p.readings == 0 {
			t.Fatalf("%d readings", p.readings)
		}
		if p.parts > lim.maxParts || p.archiveBytes > lim.maxArchiveBytes || p.archiveEntries > lim.maxEntries {
			t.Fatalf("limits: %d parts, %d archive bytes, %d entries", p.parts, p.archiveBytes, p.archiveEntries)
		}
		found := (p.found|p.rawFound)&patEICAR != 0
		limited := p.tooManyParts || p.tooDeep || p.tooManyReadings || p.archiveLimits != 0
		if found || limited {
			return
		}
		for _, ct := range []string{ct1, ct2} {
			for _, cte := range []string{cte1, cte2} {
				if clientSeesEICAR(ct, cte, body) {
					t.Fatalf("a client reading Content-Type %q and Content-Transfer-Encoding %q sees EICAR; the scanner did not (%d readings, ambiguous %q)", ct, cte, p.readings, p.ambiguous)
				}
			}
		}
	})
}

// clientSeesEICAR is one client's reading, with the standard library:
// a leaf decoded by cte, or the parts of a multipart decoded by their own
// (first) encoding. Whatever it cannot read it reports as unseen.
func clientSeesEICAR(ct, cte string, body []byte) bool {
	ct = strings.NewReplacer("\r", " ", "\n", " ").Replace(ct)
	cte = strings.ToLower(strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ").Replace(cte)))
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return decodedHasEICAR(cte, body)
	}
	if params["boundary"] == "" || normEncoding(cte) != "" {
		return false
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for range 30 {
		part, err := mr.NextRawPart()
		if err != nil {
			return false
		}
		data, err := io.ReadAll(io.LimitReader(part, 1<<20))
		if err != nil {
			return false
		}
		if _, _, err := mime.ParseMediaType(part.Header.Get("Content-Type")); err != nil && part.Header.Get("Content-Type") != "" {
			continue
		}
		if decodedHasEICAR(strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding"))), data) {
			return true
		}
	}
	return false
}

func decodedHasEICAR(cte string, data []byte) bool {
	switch normEncoding(cte) {
	case "":
		return bytes.Contains(data, patternEICAR)
	case encBase64:
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, data)
		dec, err := base64.StdEncoding.DecodeString(string(clean))
		return err == nil && bytes.Contains(dec, patternEICAR)
	}
	return false
}

// FuzzUUDecode feeds the uuencode finder arbitrary text in two pieces cut
// anywhere: no panic, nothing kept past the budget or the entry limit; and
// a well-formed block among arbitrary lines decodes, so the EICAR in it is
// found.
func FuzzUUDecode(f *testing.F) {
	f.Add([]byte("hello\nbegin 644 a.exe\nM\nend\n"), []byte("data"), "file.bin", uint16(5))
	f.Add([]byte("begin 0644 x\n`\nend\nbegin 644\n"), []byte{0, 1, 2, 0xff}, "a b.txt", uint16(0))
	f.Add([]byte("begin 644 z\n"+strings.Repeat("M", 2000)+"\n"), []byte(nil), "", uint16(300))
	f.Fuzz(func(t *testing.T, junk, data []byte, name string, cut uint16) {
		lim := defaultLimits()
		lim.maxArchiveBytes, lim.maxEntries = 64<<10, 20
		run := func(text []byte) *parsed {
			sc := newScratch()
			p := &parsed{msg: &Message{}, budget: lim.maxArchiveBytes}
			w := &walker{ctx: context.Background(), lim: lim, sc: sc, p: p}
			u := &uuScanner{w: w, part: 1, data: &sc.uu}
			c := min(int(cut), len(text))
			if err := u.feed(text[:c]); err != nil {
				t.Fatal(err)
			}
			if err := u.feed(text[c:]); err != nil {
				t.Fatal(err)
			}
			if err := u.finish(); err != nil {
				t.Fatal(err)
			}
			if sc.uu.size > lim.maxArchiveBytes || p.archiveEntries > lim.maxEntries || p.budget < 0 {
				t.Fatalf("kept %d bytes, %d entries, budget %d", sc.uu.size, p.archiveEntries, p.budget)
			}
			return p
		}
		run(junk)

		// Arbitrary lines, none of which opens a block, then a block.
		lines := strings.Split(string(junk), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "begin") {
				lines[i] = "x" + l
			}
		}
		name = strings.NewReplacer("\r", "_", "\n", "_").Replace(name)
		payload := append(append([]byte("x"), eicarText...), data...)
		if len(payload) > 16<<10 {
			payload = payload[:16<<10]
		}
		text := strings.Join(lines, "\n") + "\n" + uuencode(name, payload) + "trailing text\n"
		if p := run([]byte(text)); p.found&patEICAR == 0 {
			t.Fatalf("EICAR in a uuencoded block not found")
		}
	})
}
