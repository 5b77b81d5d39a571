package scanner

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/base64"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
)

// The crafted messages of issue 8: content past a limit, or content that
// only some reading of an ambiguous header shows, must never come out as
// "deliver". Each case names what must be in the verdict.

// emptyParts is n empty text parts, then the extra ones.
func emptyParts(n int, extra ...part) string {
	ps := make([]part, 0, n+len(extra))
	for range n {
		ps = append(ps, part{"Content-Type: text/plain", ""})
	}
	return multipartMsg(append(ps, extra...)...)
}

// nestedMsg wraps inner in levels multipart/mixed parts.
func nestedMsg(levels int, inner part) string {
	p := inner
	for i := levels; i > 0; i-- {
		p = nestedPart("lvl"+strings.Repeat("x", i), p)
	}
	return multipartMsg(p)
}

func eicarAttachment() part {
	return b64Part("application/octet-stream", `attachment; filename="readme.txt"`, []byte(eicarText))
}

func exeAttachment() part {
	return b64Part("application/octet-stream", `attachment; filename="setup.exe"`, []byte("x"))
}

// deflateZeros is a raw deflate stream of prefix, mib MiB of zeros and
// suffix, built from three compressed MiB: once the window holds nothing
// but zeros, every further MiB compresses to the same bytes, so a bomb of
// any size costs the test (and the race detector) no more than three.
func deflateZeros(t testing.TB, prefix []byte, mib int, suffix []byte) []byte {
	t.Helper()
	if mib < 3 {
		t.Fatalf("deflateZeros: %d MiB, want at least 3", mib)
	}
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	cut := func() []byte {
		fw.Flush()
		s := bytes.Clone(b.Bytes())
		b.Reset()
		return s
	}
	fw.Write(prefix)
	fw.Write(zeros)
	first := cut()
	fw.Write(zeros)
	mid := cut()
	fw.Write(zeros)
	if again := cut(); !bytes.Equal(again, mid) {
		t.Fatal("deflateZeros: a MiB of zeros does not always compress the same")
	}
	fw.Write(suffix)
	fw.Close()
	out := append(first, bytes.Repeat(mid, mib-1)...)
	return append(out, b.Bytes()...)
}

// crcZeros is the CRC-32 of prefix, mib MiB of zeros and suffix.
func crcZeros(prefix []byte, mib int, suffix []byte) uint32 {
	crc := crc32.ChecksumIEEE(prefix)
	zeros := make([]byte, 1<<20)
	for range mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	return crc32.Update(crc, crc32.IEEETable, suffix)
}

// zerosThenZip is a zip whose first entry is mib MiB of zeros and whose
// second is the given file, as the body of a base64 MIME part. Neither the
// zeros nor their compressed form is ever produced whole.
func zerosThenZip(t testing.TB, mib int, name string, data []byte) string {
	t.Helper()
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "zeros.bin", Method: zip.Deflate, CRC32: crcZeros(nil, mib, nil),
		UncompressedSize64: uint64(mib) << 20,
		CompressedSize64:   uint64(len(deflateZeros(t, nil, mib, nil))),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(deflateZeros(t, nil, mib, nil))
	w, err = zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(z.Bytes())
}

// zipNested is a zip holding name, wrapped in zips levels deep in all.
func zipNested(t testing.TB, levels int, name string, data []byte) []byte {
	z := zipOf(t, zipFile{name: name, data: data})
	for i := 1; i < levels; i++ {
		z = zipOf(t, zipFile{name: "inner" + strings.Repeat("i", i) + ".zip", data: z, store: i%2 == 0})
	}
	return z
}

func TestFailClosedCraftedMessages(t *testing.T) {
	pe := peFile()
	tests := []struct {
		name  string
		msg   func(t *testing.T) string
		want  []string // symbols that must be there
		class string   // "" = anything but clean
	}{
		{
			name: "501 empty parts then base64 EICAR",
			msg:  func(*testing.T) string { return emptyParts(501, eicarAttachment()) },
			want: []string{symMIMETooManyParts},
		},
		{
			name: "501 empty parts then .exe",
			msg:  func(*testing.T) string { return emptyParts(501, exeAttachment()) },
			want: []string{symMIMETooManyParts},
		},
		{
			name: "498 empty parts then base64 EICAR is found",
			msg:  func(*testing.T) string { return emptyParts(498, eicarAttachment()) },
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "498 empty parts then .exe is found",
			msg:  func(*testing.T) string { return emptyParts(498, exeAttachment()) },
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "11 nested multiparts then EICAR",
			msg:  func(*testing.T) string { return nestedMsg(11, eicarAttachment()) },
			want: []string{symMIMETooDeep},
		},
		{
			name: "11 nested multiparts then .exe",
			msg:  func(*testing.T) string { return nestedMsg(11, exeAttachment()) },
			want: []string{symMIMETooDeep},
		},
		{
			name: "zip: 120 MB of zeros, then EICAR",
			msg: func(t *testing.T) string {
				return multipartMsg(textPart("files"), part{
					"Content-Type: application/zip\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"files.zip\"",
					zerosThenZip(t, 120, "readme.txt", []byte(eicarText)),
				})
			},
			want: []string{symArchiveLimit},
		},
		{
			name: "zip: 120 MB of zeros, then a PE named setup.dat",
			msg: func(t *testing.T) string {
				return multipartMsg(textPart("files"), part{
					"Content-Type: application/zip\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"files.zip\"",
					zerosThenZip(t, 120, "setup.dat", pe),
				})
			},
			want: []string{symArchiveLimit},
		},
		{
			name: "zip nested 5 deep holding setup.exe",
			msg: func(t *testing.T) string {
				return multipartMsg(b64Part("application/zip", `attachment; filename="docs.zip"`, zipNested(t, 5, "setup.exe", []byte("x"))))
			},
			want: []string{symArchiveLimit},
		},
		{
			name: "zip nested 4 deep holding setup.exe is found",
			msg: func(t *testing.T) string {
				return multipartMsg(b64Part("application/zip", `attachment; filename="docs.zip"`, zipNested(t, 4, "setup.exe", []byte("x"))))
			},
			want: []string{symArchiveBannedExt}, class: "banned",
		},

		// Ambiguous MIME: every reading a client may take is scanned.
		{
			name: "two Content-Types, text/plain then multipart, hiding EICAR",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=\"hb\"\n\n" +
					multipartBody("hb", textPart("hi"), eicarAttachment()))
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "two Content-Types, text/plain then multipart, hiding .exe",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=\"hb\"\n\n" +
					multipartBody("hb", textPart("hi"), exeAttachment()))
			},
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "two Content-Types, multipart then text/plain, hiding EICAR",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"hb\"\nContent-Type: text/plain\n\n" +
					multipartBody("hb", textPart("hi"), eicarAttachment()))
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "two Content-Transfer-Encodings, 7bit then base64, hiding EICAR",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{
					"Content-Type: application/octet-stream\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.txt\"",
					base64.StdEncoding.EncodeToString([]byte(eicarText)),
				})
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "two Content-Transfer-Encodings, 7bit then base64, hiding a PE",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{
					"Content-Type: application/octet-stream\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.dat\"",
					base64.StdEncoding.EncodeToString(pe),
				})
			},
			want: []string{symBannedType}, class: "banned",
		},
		{
			name: "two Content-Transfer-Encodings, base64 then 7bit, hiding EICAR",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{
					"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit\nContent-Disposition: attachment; filename=\"a.txt\"",
					base64.StdEncoding.EncodeToString([]byte(eicarText)),
				})
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "transfer encoding with a comment",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{
					"Content-Type: application/octet-stream\nContent-Transfer-Encoding: \"Base64\" (it is)\nContent-Disposition: attachment; filename=\"a.txt\"",
					base64.StdEncoding.EncodeToString([]byte(eicarText)),
				})
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "two Content-Dispositions, harmless name first",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{
					"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.txt\"\nContent-Disposition: attachment; filename=\"run.exe\"",
					base64.StdEncoding.EncodeToString([]byte("x")),
				})
			},
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "boundary given twice",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"decoy\"; boundary=\"real\"\n\n" +
					multipartBody("real", textPart("hi"), eicarAttachment()))
			},
			want: []string{symEICAR}, class: "virus",
		},
		{
			name: "boundary given twice, the other order",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"real\"; boundary=\"decoy\"\n\n" +
					multipartBody("real", textPart("hi"), exeAttachment()))
			},
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "RFC 2231 filename hides the plain one",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), b64Part("application/octet-stream",
					`attachment; filename="evil.exe"; filename*=utf-8''invoice.pdf`, []byte("x")))
			},
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "plain filename hides the RFC 2231 one",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), b64Part("application/octet-stream",
					`attachment; filename*=utf-8''evil.exe; filename="invoice.pdf"`, []byte("x")))
			},
			want: []string{symBannedExt}, class: "banned",
		},
		{
			name: "filename given twice",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), b64Part("application/octet-stream",
					`attachment; filename="evil.exe"; filename="invoice.pdf"`, []byte("x")))
			},
			want: []string{symBannedExt}, class: "banned",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := scanWith(t, DefaultOptions(), newMsg(tc.msg(t)))
			if v.Action == ActionDeliver || v.Class == classClean {
				t.Errorf("delivered: %s", describe(v))
			}
			if tc.class != "" && v.Class != tc.class {
				t.Errorf("class %s, want %s: %s", v.Class, tc.class, describe(v))
			}
			for _, s := range tc.want {
				if !hasSymbol(v, s) {
					t.Errorf("symbol %s missing: %s", s, describe(v))
				}
			}
			if tc.class == "" && v.Class != "unscannable" {
				t.Errorf("class %s, want unscannable: %s", v.Class, describe(v))
			}
			if tc.class == "" && !strings.Contains(v.Reason, "scanned") {
				t.Errorf("reason %q does not say the message could not be scanned", v.Reason)
			}
			if tc.class == "virus" && !slices.Contains(v.Viruses, virusEICAR) {
				t.Errorf("virus not named: %s", describe(v))
			}
		})
	}
}

// The same crafted messages under every on_limit: what lies past a limit
// gets that action, a virus found before it still gets virus_action, and
// the allowlist turns none of them into a delivery.
func TestOnLimit(t *testing.T) {
	over := emptyParts(501, exeAttachment())
	ps := []part{eicarAttachment()}
	for range 600 {
		ps = append(ps, part{"Content-Type: text/plain", ""})
	}
	virusFirst := multipartMsg(ps...)
	tests := []struct {
		name        string
		onLimit     Action
		msg         string
		allowlisted bool
		skipAtt     bool
		action      Action
		class       string
	}{
		{"default", "", over, false, false, ActionQuarantine, classUnscannable},
		{"quarantine", ActionQuarantine, over, false, false, ActionQuarantine, classUnscannable},
		{"tempfail", ActionTempfail, over, false, false, ActionTempfail, classUnscannable},
		{"reject", ActionReject, over, false, false, ActionReject, classUnscannable},
		{"allowlisted", ActionTempfail, over, true, false, ActionTempfail, classUnscannable},
		{"allowlisted, attachments waived", ActionReject, over, true, true, ActionReject, classUnscannable},
		{"virus before the limit", ActionTempfail, virusFirst, false, false, ActionQuarantine, classVirus},
		{"virus before the limit, allowlisted", ActionReject, virusFirst, true, true, ActionQuarantine, classVirus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			if tc.onLimit != "" {
				o.OnLimit = tc.onLimit
			}
			m := newMsg(tc.msg)
			m.Allowlisted, m.SkipAttachments = tc.allowlisted, tc.skipAtt
			v := scanWith(t, o, m)
			if v.Action != tc.action || v.Class != tc.class {
				t.Fatalf("got %s, want %s/%s", describe(v), tc.action, tc.class)
			}
			if !hasSymbol(v, symMIMETooManyParts) {
				t.Errorf("limit not named: %s", describe(v))
			}
			if tc.class == classUnscannable && v.Reason != reasonUnscannable+": more than 500 MIME parts" {
				t.Errorf("reason %q", v.Reason)
			}
		})
	}
}

// Ambiguity is scored, named, and costs a second walk only when present.
func TestAmbiguity(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		readings int
		want     string // in the MIME_AMBIGUOUS detail; "" = no symbol
	}{
		{"plain message", multipartMsg(textPart("hi"), exeAttachment()), 1, ""},
		{"same Content-Type twice", crlf(stdHeader + "Content-Type: text/plain\nContent-Type: text/plain; charset=utf-8\n\nhi\n"), 1, ""},
		{"7bit and 8bit", crlf(stdHeader + "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: 8bit\n\nhi\n"), 1, ""},
		{"two Content-Types", crlf(stdHeader + "Content-Type: text/plain\nContent-Type: text/html\n\nhi\n"), 2, "different Content-Type fields"},
		{"two encodings", crlf(stdHeader + "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\nhi\n"), 2, "different Content-Transfer-Encoding"},
		{"two boundaries", crlf(stdHeader + "Content-Type: multipart/mixed; boundary=a; boundary=b\n\n--a\n\nx\n--a--\n"), 2, "boundary parameters"},
		{"two dispositions", multipartMsg(part{"Content-Type: application/octet-stream\nContent-Disposition: inline\nContent-Disposition: attachment; filename=a.txt", "x"}), 1, "Content-Disposition"},
		{"type and encoding", crlf(stdHeader + "Content-Type: text/plain\nContent-Type: text/html\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\nhi\n"), 4, "Content-Type"},
		{"header line without colon: read twice, not scored", crlf("From: a@example.com\nSubject: x\nnot a field\nContent-Type: text/plain\n\nhi\n"), 2, ""},
		{"multipart with an encoding", crlf(stdHeader + "Content-Type: multipart/mixed; boundary=a\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString([]byte("--a\r\n\r\nx\r\n--a--\r\n")) + "\n"), 2, "multipart with transfer encoding base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := walkBytes(t, []byte(tc.msg), defaultLimits())
			if p.readings != tc.readings {
				t.Errorf("%d readings, want %d (ambiguous: %q)", p.readings, tc.readings, p.ambiguous)
			}
			v := scanWith(t, DefaultOptions(), newMsg(tc.msg))
			var detail string
			for _, s := range v.Symbols {
				if s.Name == symMIMEAmbiguous {
					detail = s.Detail
					if s.Score != scoreAmbiguous {
						t.Errorf("score %v", s.Score)
					}
				}
			}
			switch {
			case tc.want == "" && detail != "":
				t.Errorf("MIME_AMBIGUOUS on an unambiguous message: %q", detail)
			case tc.want != "" && !strings.Contains(detail, tc.want):
				t.Errorf("MIME_AMBIGUOUS detail %q, want %q in it", detail, tc.want)
			}
		})
	}
}

// Lines that are no header field: some clients end the header there,
// others skip the line; both readings are scanned.
func TestBadHeaderLineReadings(t *testing.T) {
	body := base64.StdEncoding.EncodeToString([]byte(eicarText))
	msg := crlf("From: a@example.com\nSubject: x\nthis is no field\nContent-Type: application/octet-stream; name=\"setup.exe\"\n" +
		"Content-Transfer-Encoding: base64\n\n" + body + "\n")
	v := scanWith(t, DefaultOptions(), newMsg(msg))
	if v.Class != classVirus || !hasSymbol(v, symBannedExt) || !hasSymbol(v, symMIMEMalformed) {
		t.Errorf("got %s, want virus with %s and %s", describe(v), symBannedExt, symMIMEMalformed)
	}
}

// Every further reading walks the message again, but the archive budget is
// the message's: two readings of a zip bomb inspect no more than one.
func TestReadingsShareTheArchiveBudget(t *testing.T) {
	lim := defaultLimits()
	lim.maxArchiveBytes = 1 << 20
	z := zipOf(t, zipFile{name: "a.txt", data: make([]byte, 4<<20)})
	msg := crlf(stdHeader + "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=\"hb\"\n\n" +
		multipartBody("hb", b64Part("application/zip", `attachment; filename="b.zip"`, z)))
	p := walkBytes(t, []byte(msg), lim)
	if p.readings != 2 || p.archiveBytes > lim.maxArchiveBytes || p.archiveLimits&limitArchiveBytes == 0 {
		t.Errorf("%d readings, %d archive bytes (budget %d), limits %b", p.readings, p.archiveBytes, lim.maxArchiveBytes, p.archiveLimits)
	}
}

// Past maxReadings the message is not walked again, and says so.
func TestTooManyReadings(t *testing.T) {
	msg := crlf("From: a@example.com\nno field\nContent-Type: text/plain\nContent-Type: multipart/mixed; boundary=a; boundary=b\n" +
		"Content-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\n--a\n\nx\n--a--\n")
	p := walkBytes(t, []byte(msg), defaultLimits())
	if p.readings != maxReadings || !p.tooManyReadings {
		t.Fatalf("%d readings, too many %v, ambiguity %04b", p.readings, p.tooManyReadings, p.ambiguity)
	}
	v := scanWith(t, DefaultOptions(), newMsg(msg))
	if v.Class != classUnscannable || !hasSymbol(v, symMIMETooAmbiguous) {
		t.Errorf("got %s", describe(v))
	}
}
