package contrib

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mxgateBin is the binary built once by TestMain for every test here.
var mxgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxgate-contrib-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mxgateBin = filepath.Join(dir, "mxgate")
	build := exec.Command("go", "build", "-o", mxgateBin, "github.com/mxgate/mxgate/cmd/mxgate")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mxgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the top of the repository (this package's parent), where
// the Makefile and docker-compose.yml are.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// check runs `mxgate serve --check -c path` and returns its output and
// whether it passed.
func check(t testing.TB, path string) (string, bool) {
	t.Helper()
	out, err := exec.Command(mxgateBin, "serve", "--check", "-c", path).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run mxgate serve --check: %v", err)
		}
		return string(out), false
	}
	return string(out), true
}
