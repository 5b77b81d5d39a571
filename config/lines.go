package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/scanner"
)

// withLines adds to each problem of err (as Validate joins them) the line
// of data where its key is written, "(line N)" as DecodeStrict's errors
// have it, so that the administrator need not search the file. A problem
// of a key the file does not hold (a default, or a key that another one
// requires) is left as it is.
func withLines(data []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) != 1 {
		return err
	}
	doc := resolve(root.Content[0])
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var se *scanner.SettingError
		if errors.As(e, &se) {
			if line := lookup(doc, se.Key); line > 0 {
				e = fmt.Errorf("%w (line %d)", e, line)
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// lookup finds the line of a dotted key as problems name them
// (smtp.accept_domains[1], cluster.peers[0].id, scanner.thresholds) under
// n: where the key is written (a section's value may start on the next
// line), or the item of a list; 0 when the file does not hold it. A
// mapping's key may hold dots itself (a map keyed by domain), so the
// longest key that fits is taken.
func lookup(n *yaml.Node, key string) int {
	line := 0
	for depth := 0; key != "" && n != nil && depth < 64; depth++ {
		switch {
		case strings.HasPrefix(key, "["):
			end := strings.IndexByte(key, ']')
			var i int
			if n.Kind != yaml.SequenceNode || end < 0 {
				return 0
			}
			if _, err := fmt.Sscanf(key[1:end], "%d", &i); err != nil || i < 0 || i >= len(n.Content) {
				return 0
			}
			n, key, line = resolve(n.Content[i]), strings.TrimPrefix(key[end+1:], "."), n.Content[i].Line
		case n.Kind == yaml.MappingNode:
			var best *yaml.Node
			bestLen, bestLine := -1, 0
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if len(k) > bestLen && (key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[")) {
					best, bestLen, bestLine = resolve(n.Content[i+1]), len(k), n.Content[i].Line
				}
			}
			if best == nil {
				return 0
			}
			n, key, line = best, strings.TrimPrefix(key[bestLen:], "."), bestLine
		default:
			return 0
		}
	}
	if key != "" || n == nil {
		return 0
	}
	return line
}
