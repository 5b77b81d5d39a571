package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config/duration"
)

// Duration is a time.Duration written the Go way in the file ("60s",
// "1m30s", "10ms"); it lives in config/duration so that the scanner's
// settings, which this file embeds, are written the same way.
type Duration = duration.Duration

// Load reads and parses the file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	c.Node.File = path
	return c, nil
}

// Parse reads a YAML configuration over Default: keys absent from data keep
// their default. An unknown key or a value of the wrong type is an error
// naming the key and its line (all of them, joined); the result is then
// normalised (domains lower-cased, downstream.helo defaulted to
// smtp.hostname) and validated, so a Config is returned only when it is
// usable.
func Parse(data []byte) (Config, error) {
	c := Default()
	// Cleared so that it can follow a smtp.hostname set in the file.
	c.Downstream.Helo = ""
	if err := DecodeStrict(data, &c); err != nil && !errors.Is(err, ErrEmptyDocument) {
		return Config{}, err
	}
	c.normalize()
	if err := c.Validate(); err != nil {
		return Config{}, withLines(data, err)
	}
	return c, nil
}

// ErrEmptyDocument is DecodeStrict's answer to a document with nothing in it
// (or only comments); out is left as it was.
var ErrEmptyDocument = errors.New("parse: empty document")

// DecodeStrict decodes one YAML (or JSON) document into out, a pointer to a
// struct whose fields have yaml tags, over the values out already holds.
// Every unknown or repeated key and every value of the wrong type is an
// error naming the dotted key and its line, all of them joined. An empty
// document gives ErrEmptyDocument.
func DecodeStrict(data []byte, out any) error {
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("parse: DecodeStrict needs a pointer to a struct, got %T", out)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return ErrEmptyDocument
	case err != nil:
		return fmt.Errorf("parse: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("parse: only one YAML document is allowed (second one at line %d)", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse: %w", err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = resolve(doc.Content[0])
	}
	if isNull(doc) {
		return ErrEmptyDocument
	}
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("parse: the document must be a mapping of sections, got a %s (line %d)", kindName(doc), doc.Line)
	}
	if errs := check(doc, t.Elem(), ""); len(errs) > 0 {
		return errors.Join(errs...)
	}
	// check found the shape right; the real decode is yaml.v3's own,
	// strict as well in case the two ever disagree.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(out); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}

// normalize puts values in the one form the rest of the program compares
// against.
func (c *Config) normalize() {
	if c.Downstream.Helo == "" {
		c.Downstream.Helo = c.SMTP.Hostname
	}
	for i, d := range c.SMTP.AcceptDomains {
		c.SMTP.AcceptDomains[i] = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	}
	c.Scanner.Policy = c.Scanner.Policy.Normalize()
	c.Reports = c.Reports.Normalize()
	c.Digest = c.Digest.Normalize()
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// check walks a mapping against the struct type t and reports, with the
// dotted key and its line, every unknown or repeated key and every value
// that does not decode into its field. yaml.v3's own errors name neither
// the full key nor, for type errors, the key at all.
func check(m *yaml.Node, t reflect.Type, prefix string) []error {
	fields := make(map[string]reflect.StructField, t.NumField())
	yamlFields(t, fields)
	var errs []error
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		key := prefix + k.Value
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%sthe key must be a plain name, got a %s (line %d)", prefix, kindName(k), k.Line))
			continue
		}
		if k.Value == "<<" {
			errs = append(errs, fmt.Errorf("%s<<: merge keys are not supported; write the keys out (line %d)", prefix, k.Line))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%s: key repeated (lines %d and %d)", key, first, k.Line))
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", key, k.Line))
			continue
		}
		if v == nil || isNull(v) {
			// yaml.v3 keeps the default for a null scalar or section.
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			if v.Kind != yaml.MappingNode {
				errs = append(errs, fmt.Errorf("%s: want a mapping of keys, got a %s (line %d)", key, kindName(v), v.Line))
				continue
			}
			errs = append(errs, check(v, ft, key+".")...)
			continue
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !reflect.PointerTo(ft.Elem()).Implements(unmarshalerType) {
			errs = append(errs, checkMappings(v, ft.Elem(), key)...)
			continue
		}
		if ft.Kind() == reflect.Map {
			errs = append(errs, checkMap(v, ft, key)...)
			continue
		}
		if err := checkValue(v, ft); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v (line %d)", key, err, v.Line))
		}
	}
	return errs
}

// yamlFields adds the fields of the struct t to fields by their YAML key,
// those of an embedded struct tagged ",inline" (as config.Scanner inlines
// the scanner's settings) as if they were t's own.
func yamlFields(t reflect.Type, fields map[string]reflect.StructField) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "inline"):
			yamlFields(f.Type, fields)
		case name != "" && name != "-":
			fields[name] = f
		}
	}
}

// checkMappings checks a list whose items are mappings of the struct t,
// naming each item key[i].
func checkMappings(v *yaml.Node, t reflect.Type, key string) []error {
	if v.Kind != yaml.SequenceNode {
		return []error{fmt.Errorf("%s: want a list, got a %s (line %d)", key, kindName(v), v.Line)}
	}
	var errs []error
	for i, e := range v.Content {
		e = resolve(e)
		if e == nil || e.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s[%d]: want a mapping of keys, got a %s (line %d)", key, i, kindName(e), lineOf(e, v)))
			continue
		}
		errs = append(errs, check(e, t, fmt.Sprintf("%s[%d].", key, i))...)
	}
	return errs
}

// checkMap checks a mapping of plain keys to values of t's element type,
// naming each entry key.name.
func checkMap(v *yaml.Node, t reflect.Type, key string) []error {
	if v.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("%s: want a mapping of names to %s, got a %s (line %d)", key, wantName(t.Elem()), kindName(v), v.Line)}
	}
	var errs []error
	seen := make(map[string]int)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, e := v.Content[i], resolve(v.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s: the key must be a plain name, got a %s (line %d)", key, kindName(k), k.Line))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%s.%s: key repeated (lines %d and %d)", key, k.Value, first, k.Line))
			continue
		}
		seen[k.Value] = k.Line
		if e == nil || isNull(e) {
			errs = append(errs, fmt.Errorf("%s.%s: want %s, got nothing (line %d)", key, k.Value, wantName(t.Elem()), k.Line))
			continue
		}
		if err := checkValue(e, t.Elem()); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %v (line %d)", key, k.Value, err, e.Line))
		}
	}
	return errs
}

// checkValue decodes v into a scratch value of type t and turns a failure
// into a sentence about what was expected.
func checkValue(v *yaml.Node, t reflect.Type) error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return v.Decode(reflect.New(t).Interface())
	}
	want := wantName(t)
	if t.Kind() == reflect.Slice {
		if v.Kind != yaml.SequenceNode {
			return fmt.Errorf("want %s, got a %s", want, kindName(v))
		}
		for _, e := range v.Content {
			e = resolve(e)
			if e == nil || e.Kind != yaml.ScalarNode || isNull(e) {
				return fmt.Errorf("want %s, got a %s in it (line %d)", want, kindName(e), lineOf(e, v))
			}
		}
	} else if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("want %s, got a %s", want, kindName(v))
	}
	if err := v.Decode(reflect.New(t).Interface()); err != nil {
		if v.Kind == yaml.ScalarNode {
			return fmt.Errorf("want %s, got %q", want, v.Value)
		}
		return fmt.Errorf("want %s", want)
	}
	return nil
}

func wantName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(wantName(t.Elem()), "a ") + "s"
	}
	return t.String()
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func lineOf(n, parent *yaml.Node) int {
	if n != nil {
		return n.Line
	}
	return parent.Line
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return "single value"
	case yaml.AliasNode:
		return "alias"
	case yaml.DocumentNode:
		return "document"
	}
	return "node"
}
