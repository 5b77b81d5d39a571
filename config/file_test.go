package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Load remembers the file it read (the log names it, or says "built-in
// defaults" when there is none); a file cannot set it.
func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mxgate.yaml")
	if err := os.WriteFile(p, []byte("node: {id: n1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Node.File != p {
		t.Errorf("Load(%s): Node.File = %q, %v", p, c.Node.File, err)
	}
	if d := Default(); d.Node.File != "" {
		t.Errorf("Default().Node.File = %q, want empty", d.Node.File)
	}
	if _, err := Parse([]byte("node: {file: /x}\n")); err == nil {
		t.Error("a node file set node.file")
	}
}
