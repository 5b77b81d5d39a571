package contrib

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

// TestMakeInstall runs `make install DESTDIR=…` as a package build would,
// with the default and with Debian's paths, and checks what it put where:
// the binary runs, the unit starts the installed binary, the node file is
// the single-node example, readable by the group only, and a second
// install keeps an edited node file.
func TestMakeInstall(t *testing.T) {
	testenv.Need(t, "make", "go")
	cases := []struct {
		name            string
		vars            []string
		sbin, unit, doc string
	}{
		{"defaults", nil, "/usr/local/sbin", "/etc/systemd/system", "/usr/local/share/doc/mxgate"},
		{"debian paths", []string{"PREFIX=/usr", "UNITDIR=/lib/systemd/system"}, "/usr/sbin", "/lib/systemd/system", "/usr/share/doc/mxgate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest := t.TempDir()
			install := func() string {
				args := append([]string{"-C", repoRoot(t), "install", "DESTDIR=" + dest, "BIN=" + filepath.Join(t.TempDir(), "mxgate")}, c.vars...)
				cmd := exec.Command("make", args...)
				// Run by make test, the parent's flags and variables
				// (MAKEFLAGS) must not reach this make.
				cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			install()

			bin := filepath.Join(dest, c.sbin, "mxgate")
			wantMode(t, bin, 0o755)
			if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "mxgate ") {
				t.Fatalf("%s version: %v: %s", bin, err, out)
			}

			unit := filepath.Join(dest, c.unit, "mxgate.service")
			wantMode(t, unit, 0o644)
			u := unitKeys(t, unit)
			if got, want := u["ExecStart"], []string{c.sbin + "/mxgate serve -c /etc/mxgate/mxgate.yaml"}; !slices.Equal(got, want) {
				t.Errorf("ExecStart = %q, want %q", got, want)
			}
			if got := u["Documentation"]; len(got) != 1 || got[0] != "file:"+c.doc+"/README.md" {
				t.Errorf("Documentation = %q, want file:%s/README.md", got, c.doc)
			}

			node := filepath.Join(dest, "etc/mxgate/mxgate.yaml")
			wantMode(t, node, 0o640)
			wantMode(t, filepath.Dir(node), 0o750|fs.ModeDir)
			wantSame(t, node, "examples/single.yaml")
			for _, f := range []string{"README.md", "example.yaml", "examples/single.yaml", "examples/cluster/node1.yaml", "examples/cluster/node3.yaml"} {
				wantMode(t, filepath.Join(dest, c.doc, f), 0o644)
			}

			// An administrator's file survives the next install.
			edited := []byte("# mine\n")
			if err := os.WriteFile(node, edited, 0o640); err != nil {
				t.Fatal(err)
			}
			if out := install(); !strings.Contains(out, "keeping "+node) {
				t.Errorf("second install did not say it keeps %s:\n%s", node, out)
			}
			if b, _ := os.ReadFile(node); !bytes.Equal(b, edited) {
				t.Errorf("second install replaced the edited node file: %q", b)
			}
		})
	}
}

// TestMakeInstallAsRoot runs a real `make install` (no DESTDIR), as root,
// against a copy of /etc bound over /etc in a private mount namespace, so
// the host is left alone: it creates the system user mxgate, gives the
// node file its group, and a second run creates nothing twice.
func TestMakeInstallAsRoot(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "make", "go", "unshare", "useradd")
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	if out, err := exec.Command("cp", "-a", "/etc", etc).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	if users, _ := os.ReadFile(filepath.Join(etc, "passwd")); bytes.Contains(users, []byte("\nmxgate:")) {
		t.Skip("this host has a user mxgate already: nothing to create")
	}
	prefix := filepath.Join(dir, "usr")
	install := func() string {
		script := `mount --bind "$1" /etc && shift && exec make "$@"`
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", etc,
			"-C", repoRoot(t), "install", "PREFIX="+prefix, "UNITDIR="+filepath.Join(dir, "units"), "BIN="+filepath.Join(dir, "build", "mxgate"))
		cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := install(); !strings.Contains(out, "creating the system user mxgate") {
		t.Errorf("first install did not create the user:\n%s", out)
	}
	passwd, _ := os.ReadFile(filepath.Join(etc, "passwd"))
	if !regexp.MustCompile(`(?m)^mxgate:x:\d+:\d+::/var/lib/mxgate:/usr/sbin/nologin$`).Match(passwd) {
		t.Fatalf("no system user mxgate with home /var/lib/mxgate and nologin in the copied /etc/passwd")
	}
	gid := groupID(t, filepath.Join(etc, "group"), "mxgate")
	for _, p := range []string{"mxgate", "mxgate/mxgate.yaml"} {
		st, err := os.Stat(filepath.Join(etc, p))
		if err != nil {
			t.Fatal(err)
		}
		if g := st.Sys().(*syscall.Stat_t).Gid; g != gid {
			t.Errorf("/etc/%s: group %d, want mxgate (%d)", p, g, gid)
		}
	}
	if out := install(); strings.Contains(out, "creating the system user") || !strings.Contains(out, "keeping /etc/mxgate/mxgate.yaml") {
		t.Errorf("second install:\n%s", out)
	}
}

// groupID is the id of group name in an /etc/group file.
func groupID(t *testing.T, path, name string) uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) >= 3 && f[0] == name {
			id, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil {
				t.Fatalf("%s: group %s: %v", path, name, err)
			}
			return uint32(id)
		}
	}
	t.Fatalf("%s: no group %s", path, name)
	return 0
}

// TestSystemdUnit checks the unit with systemd-analyze verify (which
// reports problems and still exits 0, so any output fails), and the
// settings the README promises.
func TestSystemdUnit(t *testing.T) {
	analyze := testenv.Need(t, "systemd-analyze")[0]
	src, err := os.ReadFile("systemd/mxgate.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's program to exist: the one built here.
	dir := t.TempDir()
	unit := filepath.Join(dir, "mxgate.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(src, []byte("/usr/local/sbin/mxgate"), []byte(mxgateBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", unit)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	u := unitKeys(t, "systemd/mxgate.service")
	caps := []string{"CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE"}
	want := map[string][]string{
		// serve does not notify readiness (no sd_notify).
		"Type":                  {"exec"},
		"User":                  {"mxgate"},
		"ExecStartPre":          {"/usr/local/sbin/mxgate serve --check -c /etc/mxgate/mxgate.yaml"},
		"ExecReload":            {"/usr/local/sbin/mxgate serve --check -c /etc/mxgate/mxgate.yaml", "/bin/kill -HUP $MAINPID"},
		"Restart":               {"on-failure"},
		"StateDirectory":        {"mxgate"},
		"ReadWritePaths":        {"/var/lib/mxgate"},
		"AmbientCapabilities":   caps,
		"CapabilityBoundingSet": caps,
		"NoNewPrivileges":       {"true"},
		"ProtectSystem":         {"strict"},
		"ProtectHome":           {"true"},
		"PrivateTmp":            {"true"},
		"LimitNOFILE":           {"65536"},
	}
	for k, v := range want {
		if !slices.Equal(u[k], v) {
			t.Errorf("%s = %q, want %q", k, u[k], v)
		}
	}

	// The stop: smtp.drain_timeout, then the node's own 30 s (stopMargin
	// in cmd/mxgate) before it ends itself; systemd must not kill it first.
	stop := u["TimeoutStopSec"]
	if len(stop) != 1 {
		t.Fatalf("TimeoutStopSec = %q", stop)
	}
	d, err := time.ParseDuration(stop[0])
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", stop[0], err)
	}
	if need := config.Default().SMTP.DrainTimeout.Duration + 30*time.Second; d <= need {
		t.Errorf("TimeoutStopSec = %s, want more than drain_timeout + 30s = %s", d, need)
	}
}

// unitKeys reads a unit file's settings: key → values in order (a key may
// repeat, as ExecReload does).
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not key=value: %q", path, line)
		}
		keys[k] = append(keys[k], v)
	}
	return keys
}

func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("not installed: %v", err)
		return
	}
	if got := st.Mode() & (fs.ModePerm | fs.ModeDir); got != mode {
		t.Errorf("%s: mode %s, want %s", path, got, mode)
	}
}

func wantSame(t *testing.T, got, want string) {
	t.Helper()
	a, err1 := os.ReadFile(got)
	b, err2 := os.ReadFile(want)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Errorf("%s is not a copy of %s (%v, %v)", got, want, err1, err2)
	}
}
