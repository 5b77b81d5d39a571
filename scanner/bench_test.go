package scanner

import (
	"context"
	"math/rand"
	"strings"
	"testing"
)

// realistic10KB is a newsletter-like message: headers of a real relay path,
// a plain and an HTML alternative, quoted-printable, about 10 KB.
func realistic10KB() string {
	hdr := "Received: from mail.example.net (mail.example.net [192.0.2.10])\n\tby mx.example.org (mxgate) with ESMTPS id 4Xyz\n\tfor <bob@example.org>; Mon, 2 Jun 2025 10:00:00 +0000\n" +
		"Received: from [10.0.0.5] by mail.example.net with ESMTPSA; Mon, 2 Jun 2025 09:59:58 +0000\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n\tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\n" +
		stdHeader
	var plain, html strings.Builder
	para := "Dear customer, thank you for your order. Your parcel is on its way and will arrive within three working days. "
	for plain.Len() < 3500 {
		plain.WriteString(para)
		plain.WriteString("\n")
	}
	for html.Len() < 4500 {
		html.WriteString("<p style=\"font-family:Arial\">" + para + "</p>\n")
	}
	return crlf(hdr + "Content-Type: multipart/alternative; boundary=\"alt\"\n\n" + multipartBody("alt",
		qpPart("text/plain; charset=utf-8", plain.String()),
		qpPart("text/html; charset=utf-8", html.String()),
	))
}

var benchRules = []string{
	`SUBJ_PRIZE header Subject =~ /(win|won|prize)/i 2`,
	`FROM_NOREPLY header From =~ /no-?reply@/i 0.5`,
	`NO_MSGID header Message-ID !~ /^<.+@.+>$/ 1`,
	`BODY_CRYPTO body /bitcoin|wallet address/i 3`,
	`BODY_URGENT body /act now|urgent/i 1.5`,
	`RAW_B64_EXE rawbody /TVqQAAMAAAAEAAAA/ 5`,
}

func benchScan(b *testing.B, raw string, rules []string) {
	o := DefaultOptions()
	o.Rules = rules
	e := testEngine(b, o)
	sc := newScratch()
	m := newMsg(raw)
	ctx := context.Background()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		v, err := e.scan(ctx, m, sc, nil)
		if err != nil || v.Action != ActionDeliver {
			b.Fatalf("%v %s", err, describe(v))
		}
	}
}

func BenchmarkScan10KB(b *testing.B) {
	raw := realistic10KB()
	b.Run("no-rules", func(b *testing.B) { benchScan(b, raw, nil) })
	b.Run("6-rules", func(b *testing.B) { benchScan(b, raw, benchRules) })
}

func BenchmarkScanWithAttachment(b *testing.B) {
	z := zipOf(b, zipFile{name: "report.txt", data: []byte(strings.Repeat("quarterly numbers ", 20000))})
	raw := multipartMsg(textPart("see attached"), b64Part("application/zip", `attachment; filename="report.zip"`, z),
		b64Part("application/pdf", `attachment; filename="report.pdf"`, []byte(strings.Repeat("%PDF-1.7 binary ", 60000))))
	benchScan(b, raw, benchRules)
}

func BenchmarkPool10KB(b *testing.B) {
	o := quietOptions()
	o.Queue = 1000
	p, err := NewPool(o)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	raw := realistic10KB()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := newMsg(raw)
		for pb.Next() {
			if _, err := p.Scan(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScan25MB shows the memory one big message costs (B/op): the
// 18 MB zip is held once to be opened, everything else streams.
func BenchmarkScan25MB(b *testing.B) {
	data := make([]byte, 18<<20)
	rand.New(rand.NewSource(1)).Read(data)
	z := zipOf(b, zipFile{name: "backup.bin", data: data, store: true})
	raw := multipartMsg(textPart("backup attached"), b64Part("application/zip", `attachment; filename="backup.zip"`, z))
	benchScan(b, raw, benchRules)
}
