package contrib

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleFiles are every node file the repository ships: the examples
// (make install copies them) and the compose lab's.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"examples/*.yaml", "examples/*/*.yaml", "compose/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// TestExamplesPassCheck runs `mxgate serve --check` on every shipped node
// file, so that none rots when a key changes.
func TestExamplesPassCheck(t *testing.T) {
	files := exampleFiles(t)
	// One single node, three cluster nodes, three compose nodes: a glob
	// that finds fewer would pass without checking them.
	if len(files) < 7 {
		t.Fatalf("found %d node files (%v), want at least 7", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			out, ok := check(t, f)
			if !ok || !strings.Contains(out, "configuration ok") {
				t.Fatalf("mxgate serve --check -c %s: ok=%v\n%s", f, ok, out)
			}
		})
	}
}

// TestCheckRefusesBrokenExample proves the check above can fail: an
// example with one bad value is refused, naming the key.
func TestCheckRefusesBrokenExample(t *testing.T) {
	cases := []struct {
		file, old, new, key string
	}{
		{"examples/single.yaml", "id: mx1", "id: 'mx 1'", "node.id"},
		{"examples/cluster/node2.yaml", "priority: 100", "priority: 300", "cluster.priority"},
		{"compose/node3.yaml", "secret: lab-peer-secret-0123456789", "secret: short", "cluster.secret"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), c.old) {
				t.Fatalf("%s no longer holds %q: update the case", c.file, c.old)
			}
			bad := filepath.Join(t.TempDir(), filepath.Base(c.file))
			if err := os.WriteFile(bad, []byte(strings.Replace(string(b), c.old, c.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := check(t, bad)
			if ok || !strings.Contains(out, c.key) {
				t.Fatalf("broken %s: ok=%v, want a refusal naming %s:\n%s", c.file, ok, c.key, out)
			}
		})
	}
}
