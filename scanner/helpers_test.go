package scanner

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/spool"
)

const (
	gtubeText = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	eicarText = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
)

// crlf turns the LF line ends of a test literal into the CRLF of the wire.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

const stdHeader = "From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: Quarterly report\n" +
	"Date: Mon, 2 Jun 2025 10:00:00 +0000\nMessage-ID: <1@example.com>\nMIME-Version: 1.0\n"

// textMsg is a single-part plain text message.
func textMsg(body string) string {
	return crlf(stdHeader + "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n")
}

// part is one body part of a multipart test message.
type part struct {
	header string // lines without the trailing blank line, LF ends
	body   string
}

func textPart(body string) part {
	return part{"Content-Type: text/plain; charset=utf-8", body}
}

// b64Part is an attachment with base64 content, wrapped at 76 like clients do.
func b64Part(ctype, disposition string, data []byte) part {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	h := "Content-Type: " + ctype + "\nContent-Transfer-Encoding: base64"
	if disposition != "" {
		h += "\nContent-Disposition: " + disposition
	}
	return part{h, b.String()}
}

func qpPart(ctype, text string) part {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return part{"Content-Type: " + ctype + "\nContent-Transfer-Encoding: quoted-printable", b.String()}
}

// multipartBody renders parts with boundary (LF ends; callers crlf the
// whole message).
func multipartBody(boundary string, parts ...part) string {
	var b strings.Builder
	b.WriteString("This is a multi-part message in MIME format.\n")
	for _, p := range parts {
		b.WriteString("--" + boundary + "\n" + p.header + "\n\n" + p.body + "\n")
	}
	b.WriteString("--" + boundary + "--\n")
	return b.String()
}

func multipartMsg(parts ...part) string {
	return crlf(stdHeader + "Content-Type: multipart/mixed; boundary=\"b1\"\n\n" + multipartBody("b1", parts...))
}

// nestedPart wraps parts in a multipart/mixed part of its own.
func nestedPart(boundary string, parts ...part) part {
	return part{"Content-Type: multipart/mixed; boundary=\"" + boundary + "\"", multipartBody(boundary, parts...)}
}

type zipFile struct {
	name      string
	data      []byte
	store     bool // no compression
	encrypted bool // flag only: the content is as given
}

func zipOf(t testing.TB, files ...zipFile) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		var err error
		switch {
		case f.encrypted:
			var w interface{ Write([]byte) (int, error) }
			w, err = zw.CreateRaw(&zip.FileHeader{
				Name: f.name, Method: zip.Store, Flags: 0x1,
				CRC32:              crc32.ChecksumIEEE(f.data),
				CompressedSize64:   uint64(len(f.data)),
				UncompressedSize64: uint64(len(f.data)),
			})
			if err == nil {
				_, err = w.Write(f.data)
			}
		default:
			method := zip.Deflate
			if f.store {
				method = zip.Store
			}
			var w interface{ Write([]byte) (int, error) }
			w, err = zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
			if err == nil {
				_, err = w.Write(f.data)
			}
		}
		if err != nil {
			t.Fatalf("zip %s: %v", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newMsg(raw string) *Message {
	return &Message{ID: "T1", Body: spool.FromBytes([]byte(raw))}
}

func testEngine(t testing.TB, o Options) *engine {
	t.Helper()
	if o.NodeID == "" {
		o.NodeID = "n1"
	}
	e, err := newEngine(o)
	if err != nil {
		t.Fatalf("newEngine: %v", err)
	}
	return e
}

func scanWith(t testing.TB, o Options, m *Message) Verdict {
	t.Helper()
	v, err := testEngine(t, o).scan(context.Background(), m, newScratch(), nil)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return v
}

func symbolNames(v Verdict) []string {
	var s []string
	for _, sym := range v.Symbols {
		s = append(s, sym.Name)
	}
	return s
}

func hasSymbol(v Verdict, name string) bool {
	for _, s := range v.Symbols {
		if s.Name == name {
			return true
		}
	}
	return false
}

// peFile is the smallest thing isPE accepts: an MZ header pointing at a PE
// signature.
func peFile() []byte {
	b := make([]byte, 256)
	copy(b, "MZ")
	b[0x3c] = 0x80
	copy(b[0x80:], "PE\x00\x00")
	return b
}

func describe(v Verdict) string {
	return fmt.Sprintf("%s/%s score=%.2f symbols=%v viruses=%v", v.Action, v.Class, v.Score, v.Symbols, v.Viruses)
}
