package scanner

import (
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the parsed rule
		wantErr string // substring of the error
	}{
		{in: `VIAGRA header Subject =~ /v[i1]agra/i 3.5`, want: `VIAGRA header Subject =~ /v[i1]agra/i 3.5`},
		{in: "NO_DATE\theader  Date !~ /./   1", want: `NO_DATE header Date !~ /./ 1`},
		{in: `LOTTERY body /you (have )?won/ism -0.5`, want: `LOTTERY body /you (have )?won/ims -0.5`},
		{in: `FLAGS body /x/si 1`, want: `FLAGS body /x/is 1`},
		{in: `PATH rawbody /a\/b c/ 2e0`, want: `PATH rawbody /a\/b c/ 2`},
		{in: `EMPTY body // 0`, want: `EMPTY body // 0`},
		{in: `ALLHDR header ALL =~ /^X-Spam/m 1`, want: `ALLHDR header ALL =~ /^X-Spam/m 1`},
		{in: ``, wantErr: "column 1: empty rule"},
		{in: `bad header Subject =~ /x/ 1`, wantErr: `column 1: name "bad"`},
		{in: strings.Repeat("A", 65) + ` body /x/ 1`, wantErr: "column 1: name"},
		{in: `R hdr Subject =~ /x/ 1`, wantErr: `column 3: unknown kind "hdr" (want header, body or rawbody)`},
		{in: `R`, wantErr: "column 2: missing kind"},
		{in: `R header`, wantErr: "column 9: missing header field name"},
		{in: `R header Sub:ject =~ /x/ 1`, wantErr: `column 13: header field name "Sub:ject": invalid character ':'`},
		{in: `R header Subject ~= /x/ 1`, wantErr: `column 18: unknown operator "~=" (want =~ or !~)`},
		{in: `R header Subject =~`, wantErr: "column 20: missing regex"},
		{in: `R body x/ 1`, wantErr: "column 8: regex must start with /"},
		{in: `R body /abc\/ 1`, wantErr: "column 8: unterminated regex"},
		{in: `R body /abc/x 1`, wantErr: `column 13: unknown regex flag 'x' (want i, s or m)`},
		{in: `R body /abc/ii 1`, wantErr: `column 14: duplicate regex flag 'i'`},
		{in: `R body /a(b/ 1`, wantErr: "column 9: regex: error parsing regexp: missing closing )"},
		{in: `R body /x/`, wantErr: "column 11: missing score"},
		{in: `R body /x/ lots`, wantErr: `column 12: score "lots" is not a finite number`},
		{in: `R body /x/ NaN`, wantErr: "not a finite number"},
		{in: `R body /x/ 1e999`, wantErr: "not a finite number"},
		{in: `R body /x/ 1 2`, wantErr: `column 14: unexpected "2" after the score`},
		{in: "R body /x\ny/ 1", wantErr: "column 10: control character"},
		{in: `R body /é\x/ 1`, wantErr: "column 9: regex"},
		{in: "R body /\xff/ 1", wantErr: "not valid UTF-8"},
		{in: `R body /x/ ` + strings.Repeat("1", maxRuleLen), wantErr: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got := r.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			r2, err := ParseRule(r.String())
			if err != nil || !sameRule(r, r2) {
				t.Errorf("round trip: %v %v", r2, err)
			}
		})
	}
}

func sameRule(a, b Rule) bool {
	return a.Name == b.Name && a.Score == b.Score && a.kind == b.kind && a.field == b.field &&
		a.negate == b.negate && a.pattern == b.pattern && a.flags == b.flags
}

func TestRuleErrorsInOptions(t *testing.T) {
	o := DefaultOptions()
	o.Rules = []string{
		`OK body /fine/ 1`,
		`R2 hdr Subject =~ /x/ 1`,
		`OK body /again/ 1`,
		`GTUBE body /x/ 1`,
	}
	o.Thresholds.Reject = 2
	_, err := NewPool(o)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`rules[1]: column 4: unknown kind "hdr" (want header, body or rawbody)`,
		"rules[2]: name OK is already used by rules[0]",
		"rules[3]: name GTUBE is a built-in symbol",
		"thresholds: quarantine (6) must be below reject (2)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRules(t *testing.T) {
	html := multipartMsg(
		part{"Content-Type: multipart/alternative; boundary=\"alt\"", multipartBody("alt",
			textPart("plain version"),
			part{"Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable",
				"<p>Cheap r=E9plica watches</p>"},
		)},
	)
	msg := crlf("From: Seller <s@example.net>\nTo: b@example.org\nSubject: =?UTF-8?B?V0lOIGEgcHJpemU=?=\n" +
		"X-Mailer: BulkMailer 3\nContent-Type: text/plain\n\nClick here to claim.\n")
	tests := []struct {
		name string
		rule string
		msg  string
		hit  bool
	}{
		{"header match, RFC 2047 decoded", `R header Subject =~ /win a prize/i 1`, msg, true},
		{"header no match", `R header Subject =~ /invoice/ 1`, msg, false},
		{"header case of field name", `R header x-mailer =~ /^BulkMailer/ 1`, msg, true},
		{"header negated, present", `R header X-Mailer !~ /Bulk/ 1`, msg, false},
		{"header negated, absent", `R header Date !~ /./ 1`, msg, true},
		{"header ALL", `R header ALL =~ /^X-Mailer: Bulk/m 1`, msg, true},
		{"body", `R body /claim\./ 1`, msg, true},
		{"body does not see headers", `R body /Seller/ 1`, msg, false},
		{"body in html part, decoded", `R body /réplica/ 1`, html, true},
		{"body case", `R body /CHEAP/ 1`, html, false},
		{"body case-insensitive", `R body /CHEAP/i 1`, html, true},
		{"rawbody sees encoding", `R rawbody /r=E9plica/ 1`, html, true},
		{"rawbody sees headers", `R rawbody /X-Mailer: BulkMailer/ 1`, msg, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Rules = []string{tc.rule}
			v := scanWith(t, o, newMsg(tc.msg))
			if hasSymbol(v, "R") != tc.hit {
				t.Errorf("hit = %v, want %v: %s", !tc.hit, tc.hit, describe(v))
			}
		})
	}
}

func TestRuleScores(t *testing.T) {
	o := DefaultOptions()
	o.Rules = []string{
		`SHOUT header Subject =~ /^[A-Z ]+$/ 4.5`,
		`PRIZE body /prize/ 11`,
		`KNOWN header From =~ /@partner\.example$/ -2.25`,
	}
	raw := crlf("From: x@partner.example\nSubject: YOU WON\n\nclaim your prize\n")
	v := scanWith(t, o, newMsg(raw))
	if v.Score != 13.25 || v.Action != ActionQuarantine || v.Class != classSpam {
		t.Errorf("got %s", describe(v))
	}
}

func TestPrefilter(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{`(?i)bitcoin|wallet address`, []string{"bitcoin", "wallet address"}},
		{`v[i1]agra`, []string{"agra"}},
		{`(?i)Cheap (watches|pills)+`, []string{"cheap "}},
		{`you (have )?won`, []string{"you "}},
		{`ab|c`, nil},     // "c" is too short to help
		{`(?i)café`, nil}, // non-ASCII folding is not modelled
		{`\d+ dollars?`, []string{" dollar"}},
		{`x*`, nil},
	}
	for _, tc := range tests {
		got := prefilterFor(tc.re)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: %q, want %q", tc.re, got, tc.want)
		}
	}
}
