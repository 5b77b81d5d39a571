package scanner

import (
	"slices"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	eicarZip := func(t *testing.T) []byte { return zipOf(t, zipFile{name: "readme.txt", data: []byte(eicarText)}) }
	pe := peFile()
	deep := func(levels int, leaf part) string {
		p := leaf
		for i := levels; i > 0; i-- {
			p = nestedPart("n"+strings.Repeat("x", i), p)
		}
		return multipartMsg(p)
	}
	manyParts := func(n int, extra part) string {
		ps := make([]part, 0, n+1)
		for i := range n {
			ps = append(ps, textPart("part "+strings.Repeat("x", i%7)))
		}
		ps = append(ps, extra)
		return multipartMsg(ps...)
	}

	tests := []struct {
		name        string
		opts        func(*Options)
		msg         func(t *testing.T) string
		allowlisted bool
		skipAtt     bool // the allow entry waives the attachment policy
		action      Action
		class       string
		want        []string // symbols that must be there
		wantNot     []string
		virus       bool
	}{
		{
			name:   "clean text",
			msg:    func(*testing.T) string { return textMsg("Hello Bob,\nthe report is attached.\n") },
			action: ActionDeliver, class: classClean, wantNot: builtinSymbols,
		},
		{
			name:   "GTUBE raw",
			msg:    func(*testing.T) string { return textMsg("test " + gtubeText + " test") },
			action: ActionQuarantine, class: classSpam, want: []string{symGTUBE},
		},
		{
			name: "GTUBE in quoted-printable part",
			msg: func(*testing.T) string {
				// Long line: the encoder breaks it with soft line breaks,
				// and every "=" sign in it is encoded, so the raw bytes do
				// not contain the pattern.
				text := strings.Repeat("lorem ipsum =", 5) + gtubeText + strings.Repeat(" dolor=sit", 5)
				return multipartMsg(textPart("hi"), qpPart("text/plain; charset=utf-8", text))
			},
			action: ActionQuarantine, class: classSpam, want: []string{symGTUBE},
		},
		{
			name: "GTUBE in base64 binary attachment is not spam",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), b64Part("application/octet-stream", `attachment; filename="x.bin"`, []byte(gtubeText)))
			},
			action: ActionDeliver, class: classClean, wantNot: []string{symGTUBE},
		},
		{
			name:   "EICAR raw",
			msg:    func(*testing.T) string { return textMsg(eicarText) },
			action: ActionQuarantine, class: classVirus, want: []string{symEICAR}, virus: true,
		},
		{
			name: "EICAR in base64 part",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("see attached"), b64Part("application/octet-stream", `attachment; filename="eicar.txt"`, []byte(eicarText)))
			},
			action: ActionQuarantine, class: classVirus, want: []string{symEICAR}, wantNot: []string{symBannedExt}, virus: true,
		},
		{
			name: "EICAR in base64 part, virus action reject",
			opts: func(o *Options) { o.VirusAction = ActionReject },
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/octet-stream", `attachment; filename="eicar.txt"`, []byte(eicarText)))
			},
			action: ActionReject, class: classVirus, want: []string{symEICAR}, virus: true,
		},
		{
			name: "EICAR in zip",
			msg: func(t *testing.T) string {
				return multipartMsg(textPart("zip"), b64Part("application/zip", `attachment; filename="files.zip"`, eicarZip(t)))
			},
			action: ActionQuarantine, class: classVirus, want: []string{symEICAR}, virus: true,
		},
		{
			name: "EICAR in nested zip",
			msg: func(t *testing.T) string {
				inner := eicarZip(t)
				outer := zipOf(t, zipFile{name: "docs/notes.txt", data: []byte("hello")}, zipFile{name: "docs/inner.zip", data: inner})
				// Labelled as a generic file: the zip is recognised by content.
				return multipartMsg(textPart("zip"), b64Part("application/octet-stream", `attachment; filename="files.dat"`, outer))
			},
			action: ActionQuarantine, class: classVirus, want: []string{symEICAR}, virus: true,
		},
		{
			name: "zip not scanned when ScanArchives is off",
			opts: func(o *Options) { o.Attachments.ScanArchives = false },
			msg: func(t *testing.T) string {
				return multipartMsg(b64Part("application/zip", `attachment; filename="files.zip"`, eicarZip(t)))
			},
			action: ActionDeliver, class: classClean, wantNot: []string{symEICAR},
		},
		{
			name: "EICAR in forwarded message",
			msg: func(*testing.T) string {
				inner := stdHeader + "Content-Type: multipart/mixed; boundary=\"in\"\n\n" +
					multipartBody("in", textPart("fwd"), b64Part("application/octet-stream", `attachment; filename="a.txt"`, []byte(eicarText)))
				return multipartMsg(textPart("see below"), part{"Content-Type: message/rfc822", inner})
			},
			action: ActionQuarantine, class: classVirus, want: []string{symEICAR}, virus: true,
		},
		{
			name: "blocked extension",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("run me"), b64Part("application/octet-stream", `attachment; filename="setup.EXE"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt}, wantNot: []string{symDoubleExt},
		},
		{
			name: "double extension",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("invoice"), b64Part("application/x-msdownload", `attachment; filename="invoice.pdf.exe"`, []byte("x")))
			},
			// Three banned symbols (30 points) stay a quarantined attachment.
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt, symDoubleExt, symBannedType},
		},
		{
			name: "double extension with blanks, exe not in the extension list",
			opts: func(o *Options) { o.Attachments.BlockedExtensions = []string{"iso"} },
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/octet-stream", `attachment; filename="invoice.pdf      .exe"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symDoubleExt}, wantNot: []string{symBannedExt},
		},
		{
			name: "blocked type by type/*",
			opts: func(o *Options) { o.Attachments.BlockedTypes = []string{"application/*"} },
			msg: func(*testing.T) string {
				return multipartMsg(textPart("see attached"), b64Part("application/octet-stream", `attachment; filename="data.bin"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedType}, wantNot: []string{symBannedExt},
		},
		{
			name: "double extension check off",
			opts: func(o *Options) { o.Attachments.DoubleExtensions = false },
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/octet-stream", `attachment; filename="invoice.pdf.exe"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt}, wantNot: []string{symDoubleExt},
		},
		{
			name: "RFC 2231 filename",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/octet-stream", `attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.scr`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt},
		},
		{
			name: "RFC 2231 continuation in Latin-1",
			msg: func(*testing.T) string {
				// The standard library drops Latin-1 RFC 2231 values; mail
				// clients show them.
				return multipartMsg(b64Part("application/octet-stream",
					"attachment;\n filename*0*=iso-8859-1''r%E9sum%E9;\n filename*1*=.v;\n filename*2=bs", []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt},
		},
		{
			name: "RFC 2047 encoded name in Content-Type",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part(`application/octet-stream; name="=?UTF-8?B?Y2xpY2subG5r?="`, "", []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt},
		},
		{
			name: "name differs between headers",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part(`application/octet-stream; name="run.js"`, `attachment; filename="harmless.txt"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedExt},
		},
		{
			name: "blocked MIME type",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/x-msdownload", `attachment; filename="data.bin"`, []byte("x")))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedType}, wantNot: []string{symBannedExt},
		},
		{
			name: "executable disguised as picture",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("image/jpeg", `attachment; filename="photo.jpg"`, pe))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symBannedType},
		},
		{
			name: "blocked extension in zip",
			msg: func(t *testing.T) string {
				z := zipOf(t, zipFile{name: "a/readme.txt", data: []byte("hi")}, zipFile{name: "a/payload.exe", data: []byte("x")})
				return multipartMsg(b64Part("application/zip", `attachment; filename="a.zip"`, z))
			},
			action: ActionQuarantine, class: classBanned, want: []string{symArchiveBannedExt}, wantNot: []string{symBannedExt},
		},
		{
			name: "double extension and executable in nested zip",
			msg: func(t *testing.T) string {
				inner := zipOf(t, zipFile{name: "scan.pdf.js", data: []byte("x")}, zipFile{name: "photo.png", data: pe})
				z := zipOf(t, zipFile{name: "inner.zip", data: inner, store: true})
				return multipartMsg(b64Part("application/zip", `attachment; filename="a.zip"`, z))
			},
			action: ActionQuarantine, class: classBanned,
			want: []string{symArchiveBannedExt, symArchiveDoubleExt, symArchiveType},
		},
		{
			name: "encrypted zip",
			msg: func(t *testing.T) string {
				z := zipOf(t, zipFile{name: "secret.docx", data: []byte("ciphertext"), encrypted: true})
				return multipartMsg(textPart("password is 1234"), b64Part("application/zip", `attachment; filename="s.zip"`, z))
			},
			action: ActionDeliver, class: classClean, want: []string{symArchiveEncrypted},
		},
		{
			name: "corrupt zip",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/zip", `attachment; filename="s.zip"`, []byte("PK\x03\x04 not really a zip")))
			},
			action: ActionDeliver, class: classClean, want: []string{symArchiveMalformed},
		},
		{
			name: "zip bomb stops at the byte budget",
			opts: func(o *Options) { o.MaxArchiveBytes = 1 << 20 },
			msg: func(t *testing.T) string {
				z := zipOf(t, zipFile{name: "zeros.txt", data: make([]byte, 8<<20)}, zipFile{name: "late.txt", data: []byte(eicarText)})
				return multipartMsg(b64Part("application/zip", `attachment; filename="b.zip"`, z))
			},
			// What lies past the budget was never looked at: not clean.
			action: ActionQuarantine, class: classUnscannable, want: []string{symArchiveLimit}, wantNot: []string{symEICAR},
		},
		{
			name: "too many zip entries",
			opts: func(o *Options) { o.MaxArchiveEntries = 3 },
			msg: func(t *testing.T) string {
				var fs []zipFile
				for i := range 5 {
					fs = append(fs, zipFile{name: strings.Repeat("f", i+1) + ".txt", data: []byte("x")})
				}
				return multipartMsg(b64Part("application/zip", `attachment; filename="b.zip"`, zipOf(t, fs...)))
			},
			action: ActionQuarantine, class: classUnscannable, want: []string{symArchiveLimit},
		},
		{
			name: "multipart without boundary, EICAR still found",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\n" + eicarText + "\n--x--\n")
			},
			action: ActionQuarantine, class: classVirus, want: []string{symMIMEMalformed, symEICAR}, virus: true,
		},
		{
			name: "boundary never appears",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"nope\"\n\n--other\nContent-Type: text/plain\n\nhi " + gtubeText + "\n--other--\n")
			},
			action: ActionQuarantine, class: classSpam, want: []string{symMIMEMalformed, symGTUBE},
		},
		{
			name: "truncated multipart",
			msg: func(*testing.T) string {
				return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nhello, cut off here")
			},
			action: ActionDeliver, class: classClean, want: []string{symMIMEMalformed},
		},
		{
			name: "unknown charset and transfer encoding",
			msg: func(*testing.T) string {
				return multipartMsg(
					part{"Content-Type: text/plain; charset=x-klingon", "qapla"},
					part{"Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode", "begin 644 x"},
				)
			},
			action: ActionDeliver, class: classClean, want: []string{symMIMEMalformed},
		},
		{
			name: "broken header line",
			msg: func(*testing.T) string {
				return crlf("From: a@example.com\nthis line has no colon\nSubject: x\n\nbody " + eicarText + "\n")
			},
			action: ActionQuarantine, class: classVirus, want: []string{symMIMEMalformed, symEICAR}, virus: true,
		},
		{
			name: "1000 parts",
			msg: func(*testing.T) string {
				// EICAR after the part limit: the raw scan still sees it.
				return manyParts(1000, textPart(eicarText))
			},
			action: ActionQuarantine, class: classVirus, want: []string{symMIMETooManyParts, symEICAR}, virus: true,
		},
		{
			name:   "1000 parts, clean",
			msg:    func(*testing.T) string { return manyParts(1000, textPart("end")) },
			action: ActionQuarantine, class: classUnscannable, want: []string{symMIMETooManyParts},
		},
		{
			name:   "deep nesting",
			msg:    func(*testing.T) string { return deep(15, textPart("deep")) },
			action: ActionQuarantine, class: classUnscannable, want: []string{symMIMETooDeep}, wantNot: []string{symMIMEMalformed},
		},
		{
			name:   "nesting at the limit is fine",
			msg:    func(*testing.T) string { return deep(9, textPart("deep")) },
			action: ActionDeliver, class: classClean, wantNot: []string{symMIMETooDeep, symMIMEMalformed},
		},
		{
			name:   "large message",
			opts:   func(o *Options) { o.MaxMessageBytes = 100 },
			msg:    func(*testing.T) string { return textMsg(strings.Repeat("long ", 100)) },
			action: ActionDeliver, class: classClean, want: []string{symSizeLarge},
		},
		{
			name:        "allowlisted spam is delivered",
			msg:         func(*testing.T) string { return textMsg(gtubeText) },
			allowlisted: true,
			action:      ActionDeliver, class: classClean, want: []string{symAllowlist, symGTUBE},
		},
		{
			name:        "allowlist does not bypass virus detection",
			msg:         func(*testing.T) string { return textMsg(eicarText) },
			allowlisted: true,
			action:      ActionQuarantine, class: classVirus, want: []string{symAllowlist, symEICAR}, virus: true,
		},
		{
			name: "allowlisted sender still gets the attachment policy",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("invoice"), b64Part("application/pdf", `attachment; filename="invoice.pdf.exe"`, []byte("x")))
			},
			allowlisted: true,
			action:      ActionQuarantine, class: classBanned, want: []string{symAllowlist, symBannedExt, symDoubleExt},
		},
		{
			name: "allowlisted sender, banned file in a zip",
			msg: func(t *testing.T) string {
				return multipartMsg(b64Part("application/zip", `attachment; filename="a.zip"`, zipOf(t, zipFile{name: "setup.exe", data: []byte("x")})))
			},
			allowlisted: true,
			action:      ActionQuarantine, class: classBanned, want: []string{symAllowlist, symArchiveBannedExt},
		},
		{
			name: "allow entry with skip_attachments waives the attachment policy",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("invoice"), b64Part("application/pdf", `attachment; filename="invoice.pdf.exe"`, []byte("x")))
			},
			allowlisted: true, skipAtt: true,
			action: ActionDeliver, class: classClean, want: []string{symAllowlist, symBannedExt},
		},
		{
			name: "skip_attachments without an allow entry waives nothing",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/pdf", `attachment; filename="invoice.pdf.exe"`, []byte("x")))
			},
			skipAtt: true,
			action:  ActionQuarantine, class: classBanned, want: []string{symBannedExt}, wantNot: []string{symAllowlist},
		},
		{
			name: "skip_attachments does not waive a virus",
			msg: func(*testing.T) string {
				return multipartMsg(b64Part("application/octet-stream", `attachment; filename="run.exe"`, []byte(eicarText)))
			},
			allowlisted: true, skipAtt: true,
			action: ActionQuarantine, class: classVirus, want: []string{symAllowlist, symEICAR}, virus: true,
		},
		{
			name:        "skip_attachments does not waive a limit",
			msg:         func(*testing.T) string { return manyParts(600, textPart("end")) },
			allowlisted: true, skipAtt: true,
			action: ActionQuarantine, class: classUnscannable, want: []string{symAllowlist, symMIMETooManyParts},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			m := newMsg(tc.msg(t))
			m.Allowlisted, m.SkipAttachments = tc.allowlisted, tc.skipAtt
			v := scanWith(t, o, m)
			if v.Action != tc.action || v.Class != tc.class {
				t.Errorf("got %s, want %s/%s", describe(v), tc.action, tc.class)
			}
			for _, s := range tc.want {
				if !hasSymbol(v, s) {
					t.Errorf("symbol %s missing: %s", s, describe(v))
				}
			}
			for _, s := range tc.wantNot {
				if hasSymbol(v, s) {
					t.Errorf("symbol %s unexpected: %s", s, describe(v))
				}
			}
			if got := slices.Contains(v.Viruses, virusEICAR); got != tc.virus {
				t.Errorf("virus found = %v, want %v: %s", got, tc.virus, describe(v))
			}
			if tc.virus && tc.action == ActionReject && v.Reason != reasonVirus {
				t.Errorf("reason %q", v.Reason)
			}
			if v.Node != "n1" {
				t.Errorf("node %q", v.Node)
			}
			var sum float64
			for _, s := range v.Symbols {
				sum += s.Score
			}
			if sum != v.Score {
				t.Errorf("score %v is not the sum of the symbols %v", v.Score, sum)
			}
		})
	}
}

func TestAllowlistKeepsScore(t *testing.T) {
	m := newMsg(textMsg(gtubeText))
	m.Allowlisted = true
	v := scanWith(t, DefaultOptions(), m)
	if v.Score != scoreGTUBE {
		t.Errorf("score %v, want %v", v.Score, float64(scoreGTUBE))
	}
}

func TestMerge(t *testing.T) {
	o, err := DefaultOptions().normalize()
	if err != nil {
		t.Fatal(err)
	}
	sym := func(score float64) result { return result{symbols: []Symbol{{Name: "R", Score: score}}} }
	banned := result{symbols: []Symbol{{Name: symBannedExt, Score: 10}, {Name: symDoubleExt, Score: 10}}, banned: true}
	virus := result{symbols: []Symbol{{Name: symEICAR, Score: 0}}, viruses: []string{virusEICAR}}
	allow := result{symbols: []Symbol{{Name: symAllowlist}}, allow: true}
	allowAll := result{symbols: []Symbol{{Name: symAllowlist}}, allow: true, skipAtt: true}
	overLimit := result{symbols: []Symbol{{Name: symMIMETooManyParts, Score: 3}}, limits: []string{"more than 500 MIME parts"}}
	unscannable := reasonUnscannable + ": more than 500 MIME parts"
	tests := []struct {
		name        string
		virusAction Action
		results     []result
		action      Action
		class       string
		reason      string
	}{
		{"nothing", "", nil, ActionDeliver, classClean, ""},
		{"below quarantine", "", []result{sym(5.99)}, ActionDeliver, classClean, ""},
		{"negative", "", []result{sym(-20)}, ActionDeliver, classClean, ""},
		{"at quarantine", "", []result{sym(6)}, ActionQuarantine, classSpam, reasonSpam},
		{"below reject", "", []result{sym(14.99)}, ActionQuarantine, classSpam, reasonSpam},
		{"at reject", "", []result{sym(15)}, ActionReject, classSpam, reasonSpam},
		{"negative rule pulls below", "", []result{sym(16), sym(-2)}, ActionQuarantine, classSpam, reasonSpam},
		{"banned", "", []result{banned}, ActionQuarantine, classBanned, reasonBanned},
		{"banned and a little spam", "", []result{banned, sym(7)}, ActionQuarantine, classBanned, reasonBanned},
		{"banned and spam over reject", "", []result{banned, sym(15)}, ActionReject, classSpam, reasonSpam},
		{"virus, quarantine", "", []result{virus}, ActionQuarantine, classVirus, reasonVirus},
		{"virus, reject", ActionReject, []result{virus, sym(-100)}, ActionReject, classVirus, reasonVirus},
		{"virus beats spam", "", []result{virus, sym(100)}, ActionQuarantine, classVirus, reasonVirus},
		{"allow beats spam", "", []result{allow, sym(100)}, ActionDeliver, classClean, ""},
		{"allow does not waive banned", "", []result{allow, banned}, ActionQuarantine, classBanned, reasonBanned},
		{"allow does not waive banned, spam over reject", "", []result{allow, banned, sym(30)}, ActionQuarantine, classBanned, reasonBanned},
		{"allow with skip_attachments waives banned", "", []result{allowAll, banned}, ActionDeliver, classClean, ""},
		{"skip_attachments without allow waives nothing", "", []result{{skipAtt: true}, banned}, ActionQuarantine, classBanned, reasonBanned},
		{"virus beats allow", "", []result{allow, virus}, ActionQuarantine, classVirus, reasonVirus},
		{"virus beats allow with skip_attachments", "", []result{allowAll, virus}, ActionQuarantine, classVirus, reasonVirus},
		{"over a limit", "", []result{overLimit}, ActionQuarantine, classUnscannable, unscannable},
		{"over a limit, negative score", "", []result{overLimit, sym(-100)}, ActionQuarantine, classUnscannable, unscannable},
		{"over a limit beats allow", "", []result{allowAll, overLimit}, ActionQuarantine, classUnscannable, unscannable},
		{"over a limit beats banned", "", []result{banned, overLimit}, ActionQuarantine, classUnscannable, unscannable},
		{"over a limit beats spam", "", []result{overLimit, sym(100)}, ActionQuarantine, classUnscannable, unscannable},
		{"virus before a limit", ActionReject, []result{overLimit, virus}, ActionReject, classVirus, reasonVirus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			if tc.virusAction != "" {
				o.VirusAction = tc.virusAction
			}
			v := merge(&o, tc.results, nil)
			if v.Action != tc.action || v.Class != tc.class || v.Reason != tc.reason {
				t.Errorf("got %s/%s %q, want %s/%s %q", v.Action, v.Class, v.Reason, tc.action, tc.class, tc.reason)
			}
		})
	}
}

func TestMergeOnLimit(t *testing.T) {
	over := result{symbols: []Symbol{{Name: symArchiveLimit, Score: 3}}, limits: []string{"archives nested deeper than 4", "more than 1000 archive entries"}}
	for _, action := range []Action{ActionQuarantine, ActionTempfail, ActionReject} {
		o := DefaultOptions()
		o.OnLimit = action
		o, err := o.normalize()
		if err != nil {
			t.Fatal(err)
		}
		v := merge(&o, []result{over}, nil)
		want := reasonUnscannable + ": archives nested deeper than 4"
		if v.Action != action || v.Class != classUnscannable || v.Reason != want {
			t.Errorf("on_limit %s: got %s/%s %q, want %s/%s %q", action, v.Action, v.Class, v.Reason, action, classUnscannable, want)
		}
	}
	o := DefaultOptions()
	o.OnLimit = ActionDeliver
	if _, err := o.normalize(); err == nil || !strings.Contains(err.Error(), "on_limit") {
		t.Errorf("on_limit deliver accepted: %v", err)
	}
}

func TestMergeDeterministic(t *testing.T) {
	o, _ := DefaultOptions().normalize()
	a := result{symbols: []Symbol{{Name: "ZED", Score: 0.1}, {Name: "ALPHA", Score: 0.2}}}
	b := result{symbols: []Symbol{{Name: "MID", Score: 0.3}}, viruses: []string{"B", "A", "B"}}
	v1 := merge(&o, []result{a, b}, nil)
	v2 := merge(&o, []result{b, a}, nil)
	if got := strings.Join(symbolNames(v1), ","); got != "ALPHA,MID,ZED" {
		t.Errorf("symbols %s", got)
	}
	if strings.Join(v1.Headers(), "\n") != strings.Join(v2.Headers(), "\n") || v1.Score != v2.Score {
		t.Errorf("order of checks changes the verdict: %v vs %v", v1, v2)
	}
	if !slices.Equal(v1.Viruses, []string{"A", "B"}) {
		t.Errorf("viruses %v", v1.Viruses)
	}
}
