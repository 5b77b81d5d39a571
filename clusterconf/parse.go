package clusterconf

import (
	"bytes"
	"fmt"

	"github.com/mxgate/mxgate/config"
)

// Parse reads settings written in YAML or JSON (as `config show` prints
// them) over Defaults: absent keys keep their default. Like config.Parse it
// is strict: an unknown or repeated key, or a value of the wrong type, is an
// error naming the dotted key and its line (all of them, joined). The result
// is normalised (extensions and types lower-cased) and validated.
func Parse(data []byte) (Settings, error) {
	s := Defaults()
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON is YAML except that YAML refuses tabs as indentation; in
		// valid JSON a raw tab can only be white space between tokens, so
		// this changes nothing else (and keeps the line numbers).
		data = bytes.ReplaceAll(data, []byte{'\t'}, []byte{' '})
	}
	if err := config.DecodeStrict(data, &s); err != nil {
		// An empty upload would silently reset every setting to its
		// default; that is refused like any other mistake.
		return Settings{}, fmt.Errorf("parse cluster config: %w", err)
	}
	s.normalize()
	if err := s.Validate(); err != nil {
		return Settings{}, fmt.Errorf("cluster config: %w", err)
	}
	return s, nil
}
