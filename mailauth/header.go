package mailauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/mail"
	"strings"

	"github.com/mxgate/mxgate/scanner"
)

// maxHeaderBytes bounds the header read from a message: DKIM signs and
// DMARC reads only header fields, and a header past this is refused
// (permerror) rather than held in memory.
const maxHeaderBytes = 256 << 10

var errHeaderTooLarge = errors.New("header larger than 256 KiB")

// readHeader reads the message's header up to and including the empty
// line that ends it (added when the message ends inside its header),
// leaving br at the body.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	for {
		line, err := br.ReadSlice('\n')
		if len(raw)+len(line) > maxHeaderBytes {
			return nil, errHeaderTooLarge
		}
		raw = append(raw, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			return raw, nil
		}
		if err != nil { // EOF: a message with no body
			if len(raw) > 0 && raw[len(raw)-1] != '\n' {
				raw = append(raw, '\r', '\n')
			}
			return append(raw, '\r', '\n'), nil
		}
	}
}

// field is one header field, its value unfolded.
type field struct{ name, value string }

// fields splits a raw header into its fields, in order. Lines that are no
// field (no colon) are skipped with their continuations.
func fields(raw []byte) []field {
	var out []field
	inField := false
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			inField = false
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if inField {
				out[len(out)-1].value += string(line)
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		inField = ok
		if ok {
			out = append(out, field{string(bytes.TrimRight(name, " \t")), string(value)})
		}
	}
	for i := range out {
		out[i].value = strings.TrimSpace(out[i].value)
	}
	return out
}

// fromDomain is the domain of the message's author (RFC 7489 §3.1.1: the
// RFC5322.From domain). Every address of every From field must have the
// same domain; a From that net/mail cannot parse is read leniently (the
// text after the last @), since a sender could otherwise escape DMARC with
// a malformed field.
func fromDomain(fs []field) (string, bool) {
	var dom string
	n := 0
	for _, f := range fs {
		if !strings.EqualFold(f.name, "From") {
			continue
		}
		var ds []string
		if list, err := mail.ParseAddressList(f.value); err == nil {
			for _, a := range list {
				ds = append(ds, domainOf(a.Address))
			}
		} else {
			ds = append(ds, lenientDomain(f.value))
		}
		for _, d := range ds {
			n++
			if d == "" || n > 1 && d != dom {
				return "", false
			}
			dom = d
		}
	}
	return dom, n > 0
}

// domainOf is the domain of an address, lower-cased, without a final dot;
// "" when it is no host name.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	d := strings.TrimSuffix(strings.ToLower(addr[i+1:]), ".")
	if !scanner.IsHostname(d) {
		return ""
	}
	return d
}

func lenientDomain(v string) string {
	i := strings.LastIndexByte(v, '@')
	if i < 0 {
		return ""
	}
	rest := v[i+1:]
	if j := strings.IndexAny(rest, "> \t,;)\""); j >= 0 {
		rest = rest[:j]
	}
	return domainOf("@" + rest)
}

// dkimTag is the value of tag in a DKIM-Signature field's value (RFC
// 6376 §3.2 tag-list), whitespace removed; "" when absent.
func dkimTag(sig, tag string) string {
	for spec := range strings.SplitSeq(sig, ";") {
		k, v, ok := strings.Cut(spec, "=")
		if ok && strings.TrimSpace(k) == tag {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}
