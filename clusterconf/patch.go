package clusterconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config"
)

// Patch is one KEY=VALUE of `mxgate config set` (as `postconf -e` takes
// them): Key is dotted as in the YAML (scanner.thresholds.quarantine),
// Value a YAML scalar or flow collection ([a, b], {k: v}).
type Patch struct {
	Key   string
	Value *yaml.Node
}

// maxPatch bounds one KEY=VALUE: a command-line argument, not a document.
const maxPatch = 64 << 10

// ParsePatch reads one KEY=VALUE. The key must name a setting (an unknown
// one is refused with the known keys closest to it); the value must be one
// YAML value. Whether the value fits the key is checked by Settings.With.
func ParsePatch(arg string) (Patch, error) {
	if len(arg) > maxPatch {
		return Patch{}, fmt.Errorf("%.40q...: longer than %d bytes", arg, maxPatch)
	}
	key, value, ok := strings.Cut(arg, "=")
	key = strings.TrimSpace(key)
	if !ok {
		return Patch{}, fmt.Errorf("%q: want KEY=VALUE, e.g. scanner.thresholds.quarantine=7", arg)
	}
	if err := checkKey(key); err != nil {
		return Patch{}, err
	}
	if strings.TrimSpace(value) == "" {
		// An empty value would decode as null, which keeps the old value:
		// a change that silently does nothing.
		return Patch{}, fmt.Errorf("%s: no value; write [] for an empty list, '' for an empty text", key)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(value))
	if err := dec.Decode(&doc); err != nil {
		return Patch{}, fmt.Errorf("%s: value %q is not one YAML value: %v", key, value, noLine(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Patch{}, fmt.Errorf("%s: value %q is more than one YAML value", key, value)
	}
	if len(doc.Content) != 1 {
		return Patch{}, fmt.Errorf("%s: value %q is not one YAML value", key, value)
	}
	v := doc.Content[0]
	if v.Kind == yaml.AliasNode || v.Anchor != "" || v.Tag == "!!null" {
		return Patch{}, fmt.Errorf("%s: value %q: anchors, aliases and null are not values here", key, value)
	}
	return Patch{Key: key, Value: v}, nil
}

// With returns s with the patches applied in order, over s: every key not
// patched keeps its value. The result is normalised and validated; an error
// names the key.
func (s Settings) With(patches ...Patch) (Settings, error) {
	out := s.clone()
	for _, p := range patches {
		if err := checkKey(p.Key); err != nil {
			return Settings{}, err
		}
		path := strings.Split(p.Key, ".")
		// yaml.v3 merges a mapping into a map that has entries: weights={}
		// would change nothing. A map given whole replaces the old one.
		clearMap(reflect.ValueOf(&out).Elem(), path)
		doc := nest(path, p.Value)
		b, err := yaml.Marshal(doc)
		if err != nil {
			return Settings{}, fmt.Errorf("%s: encode value: %w", p.Key, err)
		}
		// Decoded over the current settings: yaml.v3 sets only the keys the
		// document holds, so the rest stay as they are.
		if err := config.DecodeStrict(b, &out); err != nil {
			return Settings{}, noLine(err)
		}
	}
	out.normalize()
	if err := out.Validate(); err != nil {
		return Settings{}, err
	}
	return out, nil
}

// clearMap empties the map that path names in v (a Settings), if it names
// a map and not a struct or an entry of one.
func clearMap(v reflect.Value, path []string) {
	for _, seg := range path {
		if v.Kind() != reflect.Struct {
			return
		}
		found := false
		for i := range v.NumField() {
			if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); name == seg {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return
		}
	}
	if v.Kind() == reflect.Map && v.CanSet() {
		v.Set(reflect.Zero(v.Type()))
	}
}

// clone copies s deeply enough that decoding into the copy leaves s alone.
func (s Settings) clone() Settings {
	c := s
	c.Scanner = s.Scanner.Clone()
	if s.Weights != nil {
		c.Weights = make(map[string]int, len(s.Weights))
		for k, v := range s.Weights {
			c.Weights[k] = v
		}
	}
	return c
}

// nest makes the mapping a: {b: {c: v}} of the path a.b.c.
func nest(path []string, v *yaml.Node) *yaml.Node {
	for i := len(path) - 1; i >= 0; i-- {
		v = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[i]}, v,
		}}
	}
	return v
}

var lineRef = regexp.MustCompile(` \(lines? [0-9]+( and [0-9]+)?\)`)

// noLine drops the line numbers of an error about a document made from one
// KEY=VALUE: they would point into a file the user never saw.
func noLine(err error) error {
	return errors.New(lineRef.ReplaceAllString(err.Error(), ""))
}

// checkKey refuses a key that names no setting, listing the closest ones.
func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key; want KEY=VALUE, e.g. mode=active-passive")
	}
	t := reflect.TypeFor[Settings]()
	for seg := range strings.SplitSeq(key, ".") {
		next, ok := child(t, seg)
		if !ok {
			return fmt.Errorf("%s: unknown key%s", key, closeKeys(key))
		}
		t = next
	}
	return nil
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// child is the type under the key seg of a value of type t: a struct's
// field by its YAML name, any (valid) key of a map.
func child(t reflect.Type, seg string) (reflect.Type, bool) {
	switch {
	case seg == "":
		return nil, false
	case t.Kind() == reflect.Map:
		return t.Elem(), config.ValidNodeID(seg)
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshaler):
		for i := range t.NumField() {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == seg {
				return f.Type, true
			}
		}
	}
	return nil, false
}

// Keys lists every settable key, dotted, found from the types' YAML names:
// a setting added to scanner.Policy is a key here without a table to keep.
// A map's keys are written <name>.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		switch {
		case t.Kind() == reflect.Map:
			keys = append(keys, prefix+".<name>")
		case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshaler):
			for i := range t.NumField() {
				name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					continue
				}
				walk(t.Field(i).Type, strings.TrimPrefix(prefix+"."+name, "."))
			}
		default:
			keys = append(keys, prefix)
		}
	}
	walk(reflect.TypeFor[Settings](), "")
	return keys
}

// closeKeys names the known keys nearest to key: those under its longest
// known prefix, else those a few edits away or ending the same way.
func closeKeys(key string) string {
	type cand struct {
		key string
		d   int
	}
	var cs []cand
	last := key[strings.LastIndex(key, ".")+1:]
	for _, k := range Keys() {
		d := distance(key, k)
		if strings.HasSuffix(k, "."+last) || k == last {
			d = min(d, 1)
		}
		if d <= max(3, len(key)/3) {
			cs = append(cs, cand{k, d})
		}
	}
	if len(cs) == 0 {
		// Nothing spelled alike: the keys under what was right so far.
		path := strings.Split(key, ".")
		for n := len(path) - 1; n > 0 && len(cs) == 0; n-- {
			prefix := strings.Join(path[:n], ".") + "."
			for _, k := range Keys() {
				if strings.HasPrefix(k, prefix) {
					cs = append(cs, cand{k, 0})
				}
			}
		}
	}
	if len(cs) == 0 {
		return "; the keys are those `mxgate config show` prints"
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	names := make([]string, 0, 6)
	for _, c := range cs[:min(len(cs), 6)] {
		names = append(names, c.key)
	}
	return "; did you mean " + strings.Join(names, ", ") + "?"
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Change is one key whose value differs between two settings; Old or New
// is "" where the key is absent (a weight added or removed).
type Change struct {
	Key, Old, New string
}

func (c Change) String() string {
	return fmt.Sprintf("%s: %s -> %s", c.Key, or(c.Old, "(none)"), or(c.New, "(none)"))
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// Diff lists, by key in the order of the YAML, what changes from a to b.
// Lists are compared whole, maps key by key.
func Diff(a, b Settings) ([]Change, error) {
	fa, err := flatten(a)
	if err != nil {
		return nil, err
	}
	fb, err := flatten(b)
	if err != nil {
		return nil, err
	}
	var out []Change
	seen := make(map[string]bool)
	for _, l := range append(fa.order, fb.order...) {
		if seen[l] {
			continue
		}
		seen[l] = true
		if fa.values[l] != fb.values[l] {
			out = append(out, Change{Key: l, Old: fa.values[l], New: fb.values[l]})
		}
	}
	return out, nil
}

// HistoryChanges is, for each revision of revs (newest first, as History
// gives them), what it changed against the next one in revs, the revision
// before it (empty, not nil, when nothing changed). The last has nothing
// to compare with: its entry is nil.
func HistoryChanges(revs []Revision) ([][]Change, error) {
	out := make([][]Change, len(revs))
	for i := 0; i+1 < len(revs); i++ {
		changes, err := Diff(revs[i+1].Settings, revs[i].Settings)
		if err != nil {
			return nil, fmt.Errorf("revision %d against %d: %w", revs[i].Number, revs[i+1].Number, err)
		}
		out[i] = append([]Change{}, changes...)
	}
	return out, nil
}

type flat struct {
	order  []string
	values map[string]string
}

func flatten(s Settings) (flat, error) {
	var n yaml.Node
	if err := n.Encode(s); err != nil {
		return flat{}, fmt.Errorf("encode settings: %w", err)
	}
	f := flat{values: make(map[string]string)}
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		if n.Kind == yaml.MappingNode && (prefix == "" || len(n.Content) > 0) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := walk(n.Content[i+1], strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")); err != nil {
					return err
				}
			}
			return nil
		}
		v, err := flow(n)
		if err != nil {
			return err
		}
		f.order = append(f.order, prefix)
		f.values[prefix] = v
		return nil
	}
	return f, walk(&n, "")
}

// flow writes a value on one line, as a KEY=VALUE takes it back.
func flow(n *yaml.Node) (string, error) {
	c := *n
	if c.Kind == yaml.SequenceNode || c.Kind == yaml.MappingNode {
		c.Style = yaml.FlowStyle
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return "", fmt.Errorf("encode value: %w", err)
	}
	return strings.TrimSpace(buf.String()), nil
}

// Mentioned lists the dotted keys a settings document (YAML or JSON) gives
// a value: its leaves, lists and empty mappings.
func Mentioned(data []byte) ([]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(bytes.ReplaceAll(data, []byte{'\t'}, []byte{' '}), &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var keys []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(c, prefix)
			}
			return
		}
		if n.Kind == yaml.MappingNode && (prefix == "" || len(n.Content) > 0) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], strings.TrimPrefix(prefix+"."+n.Content[i].Value, "."))
			}
			return
		}
		if prefix != "" {
			keys = append(keys, prefix)
		}
	}
	walk(&doc, "")
	return keys, nil
}

// Unmentioned returns the changes to keys that none of mentioned covers:
// what a whole document would drop or change without saying so.
func Unmentioned(changes []Change, mentioned []string) []Change {
	var out []Change
	for _, c := range changes {
		covered := slices.ContainsFunc(mentioned, func(m string) bool {
			return m == c.Key || strings.HasPrefix(c.Key, m+".") || strings.HasPrefix(m, c.Key+".")
		})
		if !covered {
			out = append(out, c)
		}
	}
	return out
}
