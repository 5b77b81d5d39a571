package spamd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mxgate/mxgate/engines"
)

// Reply is spamd's answer to a message.
type Reply struct {
	Spam             bool    // spamd's own verdict: Score ≥ Threshold
	Score, Threshold float64 // from the Spam header
	Rules            []Rule  // from the report's table, as listed
}

// Rule is one SpamAssassin rule that hit.
type Rule struct {
	Name        string
	Score       float64 // as the report shows it: one decimal, whole from ±10
	Description string  // bounded, without control characters
}

// Bounds on what spamd may send back.
const (
	maxHeader      = 64 << 10
	maxReport      = 256 << 10
	maxDescription = 200
	maxRules       = 1000
)

// errReply wraps what is wrong with a reply as engines.ErrProtocol.
func errReply(format string, a ...any) error {
	return fmt.Errorf("%w: %s", engines.ErrProtocol, fmt.Sprintf(format, a...))
}

var errNoReply = errReply("no reply")

// readReply reads a reply to REPORT: the status line, the headers (with
// Spam and Content-length), the report. Anything short of that is an
// error, never a message without rules.
func readReply(r io.Reader) (Reply, error) {
	br := bufio.NewReader(io.LimitReader(r, maxHeader+maxReport+1))
	header, err := readHead(br)
	if err != nil {
		return Reply{}, err
	}
	var rep Reply
	var length int64 = -1
	var sawSpam bool
	for _, h := range header {
		name, value, ok := strings.Cut(h, ":")
		if !ok || name == "" || strings.TrimSpace(name) != name {
			return Reply{}, errReply("header line %q", clip(h))
		}
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Spam"):
			if sawSpam {
				return Reply{}, errReply("two Spam headers")
			}
			sawSpam = true
			if rep, err = parseSpam(value); err != nil {
				return Reply{}, err
			}
		case strings.EqualFold(name, "Content-length"):
			if length >= 0 {
				return Reply{}, errReply("two Content-length headers")
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return Reply{}, errReply("Content-length %q", clip(value))
			}
			if n > maxReport {
				return Reply{}, errReply("report of %d bytes, over the limit of %d", n, maxReport)
			}
			length = n
		}
	}
	if !sawSpam {
		return Reply{}, errReply("no Spam header")
	}
	if length < 0 {
		return Reply{}, errReply("no Content-length header")
	}
	report := make([]byte, length)
	if n, err := io.ReadFull(br, report); err != nil {
		return Reply{}, errReply("report ended after %d of %d bytes", n, length)
	}
	if rep.Rules, err = parseTable(string(report)); err != nil {
		return Reply{}, err
	}
	return rep, nil
}

// readPong reads the answer to PING.
func readPong(r io.Reader) error {
	br := bufio.NewReader(io.LimitReader(r, maxHeader+1))
	line, err := readLine(br, maxHeader)
	if err != nil {
		return err
	}
	if err := checkStatus(line); err != nil {
		return err
	}
	if _, msg, _ := strings.Cut(line, " 0 "); msg != "PONG" {
		return errReply("ping answered %q, want PONG", clip(line))
	}
	return nil
}

// readHead reads the status line, which ends the reply unless it says
// success, then the header lines up to the empty line: at most maxHeader
// bytes in all.
func readHead(br *bufio.Reader) (header []string, err error) {
	status, err := readLine(br, maxHeader)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(status); err != nil {
		return nil, err
	}
	budget := maxHeader - len(status)
	for {
		line, err := readLine(br, budget)
		if errors.Is(err, errNoReply) {
			return nil, errReply("reply cut off after %d header lines", len(header))
		}
		if err != nil {
			return nil, err
		}
		if line == "" {
			return header, nil
		}
		budget -= len(line) + 2
		header = append(header, line)
	}
}

// readLine reads one line ending in LF (CR LF expected) of at most
// budget bytes, without its end.
func readLine(br *bufio.Reader, budget int) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > budget {
			return "", errReply("reply header over the limit of %d bytes", maxHeader)
		}
		switch {
		case err == nil:
			return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(b) == 0:
			return "", errNoReply
		case errors.Is(err, io.EOF):
			return "", errReply("reply cut off in %q", clip(string(b)))
		default:
			return "", err
		}
	}
}

// exCodes are the sysexits.h names spamd answers with.
var exCodes = map[int]string{
	64: "EX_USAGE", 65: "EX_DATAERR", 66: "EX_NOINPUT", 67: "EX_NOUSER",
	68: "EX_NOHOST", 69: "EX_UNAVAILABLE", 70: "EX_SOFTWARE", 71: "EX_OSERR",
	72: "EX_OSFILE", 73: "EX_CANTCREAT", 74: "EX_IOERR", 75: "EX_TEMPFAIL",
	76: "EX_PROTOCOL", 77: "EX_NOPERM", 78: "EX_CONFIG",
}

// checkStatus reads "SPAMD/1.x CODE MESSAGE": CODE 0 is success, any
// other spamd's own error (engines.ErrEngine) named by its EX_ code.
func checkStatus(line string) error {
	proto, rest, _ := strings.Cut(line, " ")
	code, msg, _ := strings.Cut(rest, " ")
	if !statusProto.MatchString(proto) {
		return errReply("status line %q, want SPAMD/1.x", clip(line))
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 || code != strconv.Itoa(n) {
		return errReply("status line %q: code %q", clip(line), clip(code))
	}
	if n == 0 {
		return nil
	}
	name := exCodes[n]
	if name == "" {
		name = "EX_" + strconv.Itoa(n)
	}
	return fmt.Errorf("%w: %s (%d): %s", engines.ErrEngine, name, n, clip(cleanText(msg)))
}

// parseSpam reads the Spam header: "True ; 12.3 / 5.0".
func parseSpam(v string) (Reply, error) {
	verdict, scores, ok := strings.Cut(v, ";")
	score, threshold, ok2 := strings.Cut(scores, "/")
	if !ok || !ok2 {
		return Reply{}, errReply("Spam header %q, want \"True ; score / threshold\"", clip(v))
	}
	var rep Reply
	switch strings.TrimSpace(verdict) {
	case "True", "Yes":
		rep.Spam = true
	case "False", "No":
	default:
		return Reply{}, errReply("Spam header %q: verdict not True or False", clip(v))
	}
	var err error
	if rep.Score, err = parseScore(strings.TrimSpace(score)); err != nil {
		return Reply{}, errReply("Spam header %q: score: %v", clip(v), err)
	}
	if rep.Threshold, err = parseScore(strings.TrimSpace(threshold)); err != nil {
		return Reply{}, errReply("Spam header %q: threshold: %v", clip(v), err)
	}
	return rep, nil
}

// parseScore reads a decimal number; NaN, infinities and hex floats are
// not SpamAssassin's.
func parseScore(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, "xXpPnN_iI") {
		return 0, fmt.Errorf("%q not a number", clip(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q not a number", clip(s))
	}
	if f == 0 {
		f = 0 // "-0.0": rounded from a tiny negative score
	}
	return f, nil
}

var (
	statusProto = regexp.MustCompile(`^SPAMD/1\.[0-9]+$`)
	// The line under the table's column names (" pts rule name
	// description", translated in some languages): "---- ---…- ---…".
	tableRule = regexp.MustCompile(`^ ?-{4} -{22} -{10,}\s*$`)
	// A rule's row: points ("%4.1f", or "%4.0f" from ±10 on), name,
	// description. A name longer than 22 characters pushes the rest right.
	tableRow = regexp.MustCompile(`^ {0,4}(-?[0-9]+(?:\.[0-9]+)?) ([A-Za-z0-9_]+)(?: +(.*))?$`)
)

// parseTable reads the rules from REPORT's text: the rows under the last
// "---- ----" line, up to the first line that is neither a row nor a
// row's continuation. The last such line is taken because the content
// preview above it quotes the message, which may imitate one. A report
// without a table has no rules (its template was changed); the score
// still comes from the Spam header.
func parseTable(report string) ([]Rule, error) {
	lines := strings.Split(strings.ReplaceAll(report, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if tableRule.MatchString(l) {
			start = i + 1
		}
	}
	if start < 0 {
		return nil, nil
	}
	var rules []Rule
	for _, l := range lines[start:] {
		if m := tableRow.FindStringSubmatch(l); m != nil {
			score, err := parseScore(m[1])
			if err != nil {
				return nil, errReply("report row %q: %v", clip(l), err)
			}
			if len(rules) == maxRules {
				return nil, errReply("report lists more than %d rules", maxRules)
			}
			rules = append(rules, Rule{Name: m[2], Score: score, Description: strings.TrimSpace(m[3])})
			continue
		}
		// Continuations: "[…]" lines quoting what the rule matched in the
		// message (left out; a long one is not indented), and the
		// description wrapped, indented past the points column.
		rest := strings.TrimLeft(l, " ")
		if len(rules) == 0 || rest == "" {
			break
		}
		if strings.HasPrefix(rest, "[") {
			continue
		}
		if len(l)-len(rest) < 5 {
			break
		}
		if r := &rules[len(rules)-1]; len(r.Description) < maxDescription {
			r.Description += " " + rest
		}
	}
	for i := range rules {
		rules[i].Description = clip(cleanText(rules[i].Description))
	}
	return rules, nil
}

// cleanText replaces control characters and invalid UTF-8, so that text
// from spamd is safe in logs and headers.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

// clip bounds text quoted in errors and details, on a character boundary.
func clip(s string) string {
	if len(s) <= maxDescription {
		return s
	}
	n := maxDescription
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
