package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// scanner.workers: 100000000 used to pass validation and grow the node to
// 22 GB until the kernel killed it. It is refused with one line naming the
// key and the bound, exit 1, before anything is sized from it: under a 4
// GiB address-space limit (the old node died of it at once) the refusal is
// still the only output.
func TestAbsurdWorkersRefusedByTheBinary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mxgate.yaml")
	if err := os.WriteFile(path, []byte("node:\n  data_dir: "+dir+"\nscanner:\n  workers: 100000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -v 4194304 && exec "$0" serve -c "$1"`, mxgateBin, path)
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	want := "mxgate: config " + path + ": scanner.workers: must be at most 1024, got 100000000 (line 4)\n"
	if err == nil || code != 1 || string(out) != want {
		t.Errorf("exit %d (%v), output:\n%s\nwant exit 1 and only:\n%s", code, err, out, want)
	}
}
