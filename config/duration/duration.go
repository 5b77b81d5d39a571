// Package duration is the Duration of the configuration files: a
// time.Duration written the Go way ("60s", "1m30s", "10ms") in YAML and
// JSON alike. It is its own package so that every package whose settings
// are written in the files (config, scanner) can use it without importing
// the others.
package duration

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written the Go way in the files. It marshals
// back to that form in YAML and JSON.
type Duration struct{ time.Duration }

// UnmarshalYAML accepts a Go duration string. The caller adds the key and
// the line: the value alone does not know where it is.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 30s, got a %s", kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q", n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the Go form ("1m0s").
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes the Go form, so JSON shows "1m0s" rather than nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the Go form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q", b)
	}
	d.Duration = v
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return "single value"
	}
	return "node"
}
