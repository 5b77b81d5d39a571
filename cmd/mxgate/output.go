package main

// How every management command prints: one JSON document with --json, a
// table otherwise, and every value from the outside made safe for the
// operator's terminal on the way.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// jsonFlag registers --json; what says what it prints ("one JSON array").
func jsonFlag(cmd *cobra.Command, what string) *bool {
	return cmd.Flags().Bool("json", false, "print "+what)
}

// writeJSON prints v as one indented JSON document and a newline, the
// field names being those of v's JSON tags. A nil slice prints as [], so
// that a script always gets an array where it expects a list.
func writeJSON(w io.Writer, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = reflect.MakeSlice(rv.Type(), 0, 0).Interface()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err := w.Write(escapeInvisible(b.Bytes()))
	return err
}

// escapeInvisible writes the control and format characters that
// encoding/json leaves as they are (DEL, C1 controls such as CSI U+009B,
// bidi overrides) as \u escapes: the same JSON to a parser, but nothing
// that a terminal acts on. Outside strings JSON is ASCII, so every such
// character is inside a string, where the escape is valid.
func escapeInvisible(b []byte) []byte {
	if !bytes.ContainsFunc(b, invisible) {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if invisible(r) {
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// invisible is a character the JSON encoder passes through that a
// terminal may act on; the newlines and spaces of the indentation are not.
func invisible(r rune) bool {
	return r >= 0x7f && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
}

// table prints aligned columns, two spaces apart, the same in every
// command. Each cell is made safe for the terminal, so that no value
// reaches it raw even where a caller forgot to clean it.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table; header, when given, is its first row.
func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = safe(c, false)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush prints the table; nothing is printed before.
func (t *table) flush() error { return t.tw.Flush() }

// clean makes a value safe for a terminal and for a table cell: addresses
// and subjects come from strangers, and an escape sequence in them must not
// reach the operator's terminal.
func clean(s string) string {
	if s == "" {
		return "-"
	}
	return safe(s, false)
}

// safe replaces control and format characters (bidi overrides too) and
// invalid UTF-8 with '?'; keepTab keeps tabs (folded header lines).
func safe(s string, keepTab bool) string {
	return strings.Map(func(r rune) rune {
		if keepTab && r == '\t' {
			return r
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

func cleanList(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	c := make([]string, len(l))
	for i, s := range l {
		c[i] = clean(s)
	}
	return strings.Join(c, ", ")
}

func sender(s string) string {
	if s == "" {
		return "<>"
	}
	return clean(s)
}

// rcpts shows the first recipient and how many more there are.
func rcpts(r []string) string {
	switch len(r) {
	case 0:
		return "-"
	case 1:
		return clean(r[0])
	}
	return fmt.Sprintf("%s +%d", clean(r[0]), len(r)-1)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
