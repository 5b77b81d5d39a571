package scanner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// gzipOf compresses data; name goes into the gzip header ("" = none).
func gzipOf(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Name = name
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type tarFile struct {
	name string
	data []byte
}

func tarOf(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zerosGzip is a gzip of mib MiB of zeros, optionally as the one entry of
// a tar, built as deflateZeros does.
func zerosGzip(t testing.TB, mib int, inTar bool) []byte {
	t.Helper()
	var prefix, suffix []byte
	if inTar {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Size: int64(mib) << 20, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		prefix = bytes.Clone(b.Bytes())
		suffix = make([]byte, 1024) // end of archive
	}
	g := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255}
	g = append(g, deflateZeros(t, prefix, mib, suffix)...)
	size := uint32(len(prefix) + mib<<20 + len(suffix))
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(g, crcZeros(prefix, mib, suffix)), size)
}

// uuencode encodes data as a uuencode block (61-character lines).
func uuencode(name string, data []byte) string {
	var b strings.Builder
	b.WriteString("begin 644 " + name + "\n")
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + ' '
	}
	for len(data) > 0 {
		n := min(len(data), 45)
		line := data[:n]
		data = data[n:]
		b.WriteByte(enc(byte(n)))
		for i := 0; i < n; i += 3 {
			var g [3]byte
			copy(g[:], line[i:min(i+3, n)])
			b.WriteByte(enc(g[0] >> 2))
			b.WriteByte(enc((g[0]<<4 | g[1]>>4) & 0x3f))
			b.WriteByte(enc((g[1]<<2 | g[2]>>6) & 0x3f))
			b.WriteByte(enc(g[2] & 0x3f))
		}
		b.WriteByte('\n')
	}
	b.WriteString("`\nend\n")
	return b.String()
}

func TestUUDecode(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("a"), []byte("ab"), []byte(eicarText), peFile(), bytes.Repeat([]byte{0, 0xff, 7}, 100)} {
		sc := newScratch()
		p := &parsed{msg: &Message{}, budget: 1 << 20}
		w := &walker{lim: defaultLimits(), sc: sc, p: p}
		u := &uuScanner{w: w, part: 1, data: &sc.uu}
		u.feed([]byte("text before\n" + uuencode("f.bin", data) + "after\n"))
		u.finish()
		if len(p.leaves) != 1 || p.leaves[0].names[0] != "f.bin" {
			t.Fatalf("%d bytes: leaves %+v", len(data), p.leaves)
		}
	}
	// The decoder itself, byte for byte.
	for _, data := range [][]byte{[]byte("x"), []byte(eicarText), bytes.Repeat([]byte{1, 2, 3, 250}, 50)} {
		sc := newScratch()
		p := &parsed{msg: &Message{}, budget: 1 << 20}
		u := &uuScanner{w: &walker{lim: defaultLimits(), sc: sc, p: p}, part: 1, data: &sc.uu}
		for _, line := range strings.Split(uuencode("f", data), "\n")[1:] {
			if line == "end" {
				break
			}
			u.in = true
			u.decodeLine([]byte(line))
		}
		got, _ := io.ReadAll(io.NewSectionReader(&sc.uu, 0, sc.uu.size))
		if !bytes.Equal(got, data) {
			t.Errorf("decoded %q, want %q", got, data)
		}
	}
}

func TestGzipTarUU(t *testing.T) {
	pe := peFile()
	eicar := []byte(eicarText)
	attach := func(ctype, name string, data []byte) string {
		return multipartMsg(textPart("see attached"), b64Part(ctype, `attachment; filename="`+name+`"`, data))
	}
	tests := []struct {
		name    string
		msg     func(t *testing.T) string
		class   string
		want    []string
		wantNot []string
	}{
		{
			name: "EICAR in .gz",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "report.txt.gz", gzipOf(t, "report.txt", eicar))
			},
			class: classVirus, want: []string{symEICAR},
		},
		{
			name:  "EICAR in gzip named by nothing but its content",
			msg:   func(t *testing.T) string { return attach("application/octet-stream", "data.bin", gzipOf(t, "", eicar)) },
			class: classVirus, want: []string{symEICAR},
		},
		{
			name: "inner name from the gzip header",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "data.gz", gzipOf(t, "setup.exe", []byte("x")))
			},
			class: classBanned, want: []string{symArchiveBannedExt},
		},
		{
			name: "inner name from the outer name",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "invoice.pdf.exe.gz", gzipOf(t, "", []byte("x")))
			},
			class: classBanned, want: []string{symArchiveBannedExt, symArchiveDoubleExt},
		},
		{
			name: "header name differs from the outer name",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "invoice.pdf.exe.gz", gzipOf(t, "invoice.pdf", []byte("x")))
			},
			class: classBanned, want: []string{symArchiveBannedExt},
		},
		{
			name: "PE in .gz",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "notes.txt.gz", gzipOf(t, "notes.txt", pe))
			},
			class: classBanned, want: []string{symArchiveType},
		},
		{
			name: ".tar.gz with an .exe and EICAR",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "backup.tar.gz", gzipOf(t, "backup.tar",
					tarOf(t, tarFile{"docs/readme.txt", eicar}, tarFile{"docs/setup.exe", []byte("x")})))
			},
			class: classVirus, want: []string{symEICAR, symArchiveBannedExt},
		},
		{
			name: ".tgz with a PE named .dat",
			msg: func(t *testing.T) string {
				return attach("application/x-compressed-tar", "backup.tgz", gzipOf(t, "", tarOf(t, tarFile{"a/readme.txt", []byte("hi")}, tarFile{"a/setup.dat", pe})))
			},
			class: classBanned, want: []string{symArchiveType},
		},
		{
			name: "plain .tar",
			msg: func(t *testing.T) string {
				return attach("application/x-tar", "files.tar", tarOf(t, tarFile{"run.js", []byte("x")}))
			},
			class: classBanned, want: []string{symArchiveBannedExt},
		},
		{
			name: "zip in gzip",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "files.zip.gz", gzipOf(t, "files.zip", zipOf(t, zipFile{name: "setup.exe", data: []byte("x")})))
			},
			class: classBanned, want: []string{symArchiveBannedExt},
		},
		{
			name: "gzip in zip",
			msg: func(t *testing.T) string {
				return attach("application/zip", "files.zip", zipOf(t, zipFile{name: "payload.gz", data: gzipOf(t, "", eicar), store: true}))
			},
			class: classVirus, want: []string{symEICAR},
		},
		{
			name: "harmless .tar.gz",
			msg: func(t *testing.T) string {
				return attach("application/gzip", "src.tar.gz", gzipOf(t, "", tarOf(t, tarFile{"src/main.go", []byte("package main")}, tarFile{"README", []byte("hi")})))
			},
			class: classClean, wantNot: []string{symArchiveMalformed, symArchiveLimit},
		},
		{
			name: "broken tar in gzip still goes through the patterns",
			msg: func(t *testing.T) string {
				bogus := make([]byte, 512)
				copy(bogus, "file.txt")
				copy(bogus[257:], "ustar\x00") // magic, but no valid checksum
				return attach("application/gzip", "x.tar.gz", gzipOf(t, "", append(bogus, eicar...)))
			},
			class: classVirus, want: []string{symEICAR, symArchiveMalformed},
		},
		{
			name: "truncated gzip: what it holds is scanned",
			msg: func(t *testing.T) string {
				g := gzipOf(t, "", append(eicar, make([]byte, 4096)...))
				return attach("application/gzip", "x.gz", g[:len(g)-12])
			},
			class: classVirus, want: []string{symEICAR, symArchiveMalformed},
		},
		{
			name:  "not a gzip, named .gz",
			msg:   func(*testing.T) string { return attach("application/gzip", "x.gz", []byte("no gzip at all")) },
			class: classClean, want: []string{symArchiveMalformed},
		},
		{
			name: "gzip with a bad checksum",
			msg: func(t *testing.T) string {
				g := gzipOf(t, "", []byte("hello"))
				g[len(g)-8] ^= 0xff
				return attach("application/gzip", "x.gz", g)
			},
			class: classClean, want: []string{symArchiveMalformed},
		},
		{
			name:  "gzip header only",
			msg:   func(t *testing.T) string { return attach("application/gzip", "x.gz", gzipOf(t, "a.txt", nil)[:10]) },
			class: classClean, want: []string{symArchiveMalformed},
		},

		// uuencode
		{
			name: "uuencoded .exe in a text part",
			msg: func(*testing.T) string {
				return textMsg("Here it is:\n\n" + uuencode("setup.exe", []byte("MZ")) + "\nBye")
			},
			class: classBanned, want: []string{symBannedExt},
		},
		{
			name:  "uuencoded EICAR",
			msg:   func(*testing.T) string { return textMsg(uuencode("readme.txt", eicar)) },
			class: classVirus, want: []string{symEICAR},
		},
		{
			name:  "uuencoded PE named as a picture",
			msg:   func(*testing.T) string { return textMsg(uuencode("photo.jpg", pe)) },
			class: classBanned, want: []string{symBannedType},
		},
		{
			name: "uuencoded zip holding an .exe",
			msg: func(t *testing.T) string {
				return textMsg(uuencode("files.zip", zipOf(t, zipFile{name: "setup.exe", data: []byte("x")})))
			},
			class: classBanned, want: []string{symArchiveBannedExt},
		},
		{
			name: "uuencode in a quoted-printable part",
			msg: func(*testing.T) string {
				return multipartMsg(qpPart("text/plain; charset=utf-8", "see below\n"+uuencode("run.vbs", []byte("x"))))
			},
			class: classBanned, want: []string{symBannedExt},
		},
		{
			name: "x-uuencode transfer encoding",
			msg: func(*testing.T) string {
				return multipartMsg(textPart("hi"), part{"Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode", uuencode("a.bin", eicar)})
			},
			class: classVirus, want: []string{symEICAR}, wantNot: []string{symMIMEMalformed},
		},
		{
			name: "uuencode block without end",
			msg: func(*testing.T) string {
				return textMsg(strings.TrimSuffix(uuencode("readme.txt", eicar), "`\nend\n"))
			},
			class: classVirus, want: []string{symEICAR},
		},
		{
			name: "garbage after begin",
			msg: func(*testing.T) string {
				return textMsg("begin 644 notes.txt\n\x00\xff" + strings.Repeat("~", 2000) + "\n!!!!\nM\nend\n")
			},
			class: classClean,
		},
		{
			name:  "begin in prose",
			msg:   func(*testing.T) string { return textMsg("Let us begin 644 of them now.\nbegin\nbegin 9 x\n") },
			class: classClean, wantNot: []string{symBannedExt},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := scanWith(t, DefaultOptions(), newMsg(tc.msg(t)))
			if v.Class != tc.class {
				t.Errorf("class %s, want %s: %s", v.Class, tc.class, describe(v))
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
			if tc.class == classVirus && !slices.Contains(v.Viruses, virusEICAR) {
				t.Errorf("virus not named: %s", describe(v))
			}
		})
	}
}

// A gzip bomb costs at most the archive budget in bytes inspected, a few
// buffers in memory, and is reported as a limit, not as clean content.
func TestGzipBomb(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inTar bool
	}{{"gzip", false}, {"tar.gz", true}} {
		t.Run(tc.name, func(t *testing.T) {
			// Sound bombs: the stream decompresses completely (this part
			// of the test reads it whole, outside the scanner).
			bomb := zerosGzip(t, 16, tc.inTar)
			zr, err := gzip.NewReader(bytes.NewReader(bomb))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, zr); err != nil || n < 16<<20 {
				t.Fatalf("the bomb is broken: %d bytes, %v", n, err)
			}

			bomb = zerosGzip(t, 1024, tc.inTar) // 1 GiB of zeros, about 1 MB
			msg := multipartMsg(textPart("see attached"), b64Part("application/gzip", `attachment; filename="bomb.gz"`, bomb))
			o := DefaultOptions()
			o.MaxArchiveBytes = 4 << 20 // the race detector slows inflating 20-fold
			e := testEngine(t, o)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p := &parsed{msg: &Message{}}
			if err := walk(t.Context(), strings.NewReader(msg), e.lim, newScratch(), p); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d compressed bytes, %d inspected, %.1f MiB allocated", len(bomb), p.archiveBytes, float64(alloc)/(1<<20))
			if p.archiveBytes > o.MaxArchiveBytes || p.archiveLimits&limitArchiveBytes == 0 {
				t.Errorf("inspected %d of budget %d, limits %b", p.archiveBytes, o.MaxArchiveBytes, p.archiveLimits)
			}
			// The decoded message in the archive buffer and fixed buffers;
			// nothing that grows with what the bomb expands to.
			if limit := uint64(2*len(msg)) + 4<<20; alloc > limit {
				t.Errorf("allocated %d bytes for a %d-byte message", alloc, len(msg))
			}
			v := scanWith(t, o, newMsg(msg))
			if v.Class != classUnscannable || !hasSymbol(v, symArchiveLimit) {
				t.Errorf("got %s", describe(v))
			}
		})
	}
}

// BenchmarkGzipBomb gives the figures of a bomb against the default budget
// (50 MiB): time and memory per message.
func BenchmarkGzipBomb(b *testing.B) {
	bomb := zerosGzip(b, 1024, true)
	msg := newMsg(multipartMsg(b64Part("application/gzip", `attachment; filename="bomb.tar.gz"`, bomb)))
	e := testEngine(b, DefaultOptions())
	sc := newScratch()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.scan(b.Context(), msg, sc, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// A begin line of any length: the name is kept by its end.
func TestUULongName(t *testing.T) {
	for _, n := range []int{1000, 1019, 1020, 1100, 5000} {
		name := strings.Repeat("a", n) + ".exe"
		v := scanWith(t, DefaultOptions(), newMsg(textMsg(uuencode(name, []byte(eicarText)))))
		if v.Class != classVirus || !hasSymbol(v, symBannedExt) {
			t.Errorf("name of %d bytes: %s", len(name), describe(v))
		}
	}
}
