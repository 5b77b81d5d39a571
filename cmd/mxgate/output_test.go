package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestWriteJSON(t *testing.T) {
	type item struct {
		ID      string   `json:"id"`
		Subject string   `json:"subject,omitempty"`
		Tags    []string `json:"tags"`
	}
	for _, tt := range []struct {
		name string
		v    any
		want string // the whole output; "" = only check the round trip
	}{
		{"nil slice is an empty array", []item(nil), "[]\n"},
		{"empty slice", []item{}, "[]\n"},
		{"object, indented, field names from the tags", item{ID: "Q1", Tags: []string{"a"}}, "{\n  \"id\": \"Q1\",\n  \"tags\": [\n    \"a\"\n  ]\n}\n"},
		{"nil slice inside stays null", item{ID: "Q1"}, "{\n  \"id\": \"Q1\",\n  \"tags\": null\n}\n"},
		{"C1 control (CSI) escaped", item{Subject: "a\u009b31mred"}, "{\n  \"id\": \"\",\n  \"subject\": \"a\\u009b31mred\",\n  \"tags\": null\n}\n"},
		{"DEL escaped", []string{"a\x7fb"}, "[\n  \"a\\u007fb\"\n]\n"},
		{"bidi override escaped", []string{"gpj.\u202eexe"}, "[\n  \"gpj.\\u202eexe\"\n]\n"},
		{"format character above the BMP as a surrogate pair", []string{"x\U000E0041"}, "[\n  \"x\\udb40\\udc41\"\n]\n"},
		{"C0 control, as encoding/json does", []string{"a\x1b]0;pwned\x07"}, "[\n  \"a\\u001b]0;pwned\\u0007\"\n]\n"},
		{"printable non-ASCII kept", []string{"Grüße 日本 😀"}, "[\n  \"Grüße 日本 😀\"\n]\n"},
		{"map keys too", map[string]int{"k\u200e": 1}, "{\n  \"k\\u200e\": 1\n}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeJSON(&b, tt.v); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if out != tt.want {
				t.Errorf("writeJSON = %q, want %q", out, tt.want)
			}
			for _, r := range out {
				if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
					t.Errorf("output holds %U", r)
				}
			}
			// The escapes change nothing for a parser.
			if tt.v == nil || reflect.ValueOf(tt.v).Kind() == reflect.Slice && reflect.ValueOf(tt.v).Len() == 0 {
				return
			}
			back := reflect.New(reflect.TypeOf(tt.v))
			if err := json.Unmarshal(b.Bytes(), back.Interface()); err != nil || !reflect.DeepEqual(back.Elem().Interface(), tt.v) {
				t.Errorf("round trip = %#v, %v; want %#v", back.Elem().Interface(), err, tt.v)
			}
		})
	}
}

func FuzzEscapeInvisible(f *testing.F) {
	for _, s := range []string{"", "plain", "a\u009bb", "\u202e", "\U000E0041", "\x7f", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		if err := writeJSON(&b, []string{s}); err != nil {
			t.Fatal(err)
		}
		var back []string
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back) != 1 {
			t.Fatalf("output %q does not parse: %v", b.String(), err)
		}
		var plain bytes.Buffer
		enc := json.NewEncoder(&plain)
		var want []string
		if enc.Encode([]string{s}) == nil && json.Unmarshal(plain.Bytes(), &want) == nil && back[0] != want[0] {
			t.Fatalf("parsed %q, encoding/json alone gives %q", back[0], want[0])
		}
		for _, r := range b.String() {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("output holds %U", r)
			}
		}
	})
}

func TestTable(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{"header and rows, two spaces between columns", []string{"KIND", "VALUE", "COMMENT"},
			[][]string{{"block", "@spam.example", "-"}, {"allow", "192.0.2.0/24", "ticket 42"}},
			"KIND   VALUE          COMMENT\nblock  @spam.example  -\nallow  192.0.2.0/24   ticket 42\n"},
		{"no header: key and value", nil, [][]string{{"NODE", "n1"}, {"ADVERT INTERVAL", "1s"}},
			"NODE             n1\nADVERT INTERVAL  1s\n"},
		{"a tab in a cell cannot add a column", []string{"A", "B"}, [][]string{{"x\ty", "z"}},
			"A    B\nx?y  z\n"},
		{"control and format characters in a cell", []string{"A"}, [][]string{{"\x1b[31mred\u202e\u009b"}},
			"A\n?[31mred??\n"},
		{"a newline in a cell cannot add a row", []string{"A", "B"}, [][]string{{"x\nFAKE", "z"}},
			"A       B\nx?FAKE  z\n"},
		{"empty table", nil, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tb := newTable(&b, tt.header...)
			for _, r := range tt.rows {
				tb.row(r...)
			}
			if err := tb.flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("table:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestCellHelpers(t *testing.T) {
	for _, tt := range []struct {
		name, got, want string
	}{
		{"clean empty", clean(""), "-"},
		{"clean escape", clean("a\x1b[2Jb"), "a?[2Jb"},
		{"clean invalid UTF-8", clean("a\xffb"), "a?b"},
		{"safe keeps tabs when asked", safe("Subject: x\r\n\tfolded", true), "Subject: x??\tfolded"},
		{"sender null", sender(""), "<>"},
		{"rcpts none", rcpts(nil), "-"},
		{"rcpts one", rcpts([]string{"a@x"}), "a@x"},
		{"rcpts more", rcpts([]string{"a@x", "b@x", "c@x"}), "a@x +2"},
		{"cleanList", cleanList([]string{"a", "b\x07"}), "a, b?"},
		{"cleanList empty", cleanList(nil), "-"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if got := when(time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)); !strings.HasPrefix(got, "2026-01-0") || len(got) != len("2006-01-02 15:04:05") {
		t.Errorf("when = %q", got)
	}
	if got := when(time.Time{}); got != "-" {
		t.Errorf("when(zero) = %q", got)
	}
}
