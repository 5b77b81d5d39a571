package clusterconf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// SeedHash identifies the cluster-wide part of a node file: equal settings
// (after the normalisation every stored revision gets) hash the same, so a
// file whose node-local keys or layout changed does not count as changed.
func SeedHash(s Settings) string {
	s.normalize()
	data, err := json.Marshal(s)
	if err != nil {
		// Settings are plain data; a failure here is a programming error,
		// and a hash that never matches makes the file seed, as before.
		return "unhashable: " + err.Error()
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// DiffKeys names the keys (dotted, as in the node file: "scanner.thresholds.quarantine")
// whose values differ between a and b, sorted. A list counts as one value.
func DiffKeys(a, b Settings) []string {
	a.normalize()
	b.normalize()
	return DiffJSONKeys(a, b)
}

// DiffJSONKeys names the dotted keys of a's and b's JSON forms whose values
// differ, sorted; a value that does not encode counts as one empty object.
func DiffJSONKeys(a, b any) []string {
	fa, fb := jsonLeaves(a), jsonLeaves(b)
	var out []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || !reflect.DeepEqual(va, vb) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// jsonLeaves maps each leaf of v's JSON form to its dotted key.
func jsonLeaves(v any) map[string]any {
	out := map[string]any{}
	data, err := json.Marshal(v)
	if err != nil {
		return out
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			out[prefix] = v
			return
		}
		for k, sub := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			walk(key, sub)
		}
	}
	walk("", tree)
	return out
}

// seedKey is where a backend keeps a node's seed mark.
func seedKey(node string) string { return "seed:" + node }

// checkSeedNode refuses an empty node id, which would share one mark.
func checkSeedNode(node string) error {
	if node == "" {
		return fmt.Errorf("seed mark: empty node id")
	}
	return nil
}
