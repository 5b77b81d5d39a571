package lab_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lab"
	"github.com/mxgate/mxgate/testenv"
)

// Names and addresses are checked before anything is created.
func TestCreateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes int
		want  string
	}{
		{"mxlab", 0, "1..20"},
		{"mxlab", 21, "1..20"},
		{"", 3, "1..20 characters"},
		{"mx-lab", 3, "only letters and digits"},
		{"mx lab", 3, "only letters and digits"},
		{strings.Repeat("m", 21), 3, "1..20 characters"},
	} {
		_, err := lab.Create(context.Background(), tc.name, tc.nodes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%q, %d) = %v, want an error with %q", tc.name, tc.nodes, err, tc.want)
		}
	}
	l := lab.Open("mxlabnone", 1)
	for _, tc := range []struct{ host, addr, want string }{
		{"mail", "10.0.0.1", "not in 198.18.0.0/24"},
		{"mail", "198.18.1.1", "not in 198.18.0.0/24"},
		{"mail", "nonsense", "not in 198.18.0.0/24"},
		{"ma-il", "198.18.0.25", "letters or digits"},
		{"averylonghostname", "198.18.0.25", "letters or digits"},
	} {
		if err := l.AddHost(context.Background(), tc.host, tc.addr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddHost(%q, %q) = %v, want an error with %q", tc.host, tc.addr, err, tc.want)
		}
	}
}

// Stop ends a process with SIGTERM, or with SIGKILL after the grace when
// it ignores SIGTERM; Destroy removes the namespaces; a second Create of a
// taken name is ErrExists and leaves the lab alone.
func TestSpawnStopDestroy(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "ip", "sh", "sleep")
	ctx := testenv.Context(t, time.Minute)
	name := fmt.Sprintf("mxlabu%d", os.Getpid()%100000)
	t.Cleanup(func() { lab.Destroy(context.Background(), name) })
	l, err := lab.Create(ctx, name, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := lab.Create(ctx, name, 1); !errors.Is(err, lab.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	if n := len(l.Namespaces()); n != 3 {
		t.Fatalf("the refused Create changed the lab: %d namespaces, want 3", n)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		argv       []string
		wantKilled bool
	}{
		{"polite", []string{"sleep", "300"}, false},
		{"deaf", []string{"sh", "-c", `trap "" TERM; exec sleep 300`}, true},
	} {
		p, err := lab.Spawn(tc.name, l.Node(1), filepath.Join(dir, tc.name+".log"), tc.argv...)
		if err != nil {
			t.Fatal(err)
		}
		// Settle once the program runs (sh has exec'd sleep).
		deadline := time.Now().Add(5 * time.Second)
		for {
			if err := p.Settle(); err == nil && p.Cmdline[0] == "sleep" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never ran sleep: %q", tc.name, p.Cmdline)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if pids, _ := lab.Pids(l.Node(1)); len(pids) != 1 || pids[0] != p.PID {
			t.Errorf("%s: pids in %s = %v, want [%d]", tc.name, l.Node(1), pids, p.PID)
		}
		killed, err := p.Stop(ctx, 300*time.Millisecond)
		if err != nil || killed != tc.wantKilled || p.Running() {
			t.Errorf("%s: Stop = %v, %v (running %v), want killed=%v", tc.name, killed, err, p.Running(), tc.wantKilled)
		}
	}
	signalled, err := lab.Destroy(ctx, name)
	if err != nil || len(signalled) != 0 {
		t.Errorf("Destroy = %v, %v; want nothing left to signal", signalled, err)
	}
	if left := lab.Namespaces(name); len(left) != 0 {
		t.Errorf("namespaces after Destroy: %v", left)
	}
	if _, err := lab.Destroy(ctx, name); err != nil {
		t.Errorf("Destroy of a removed lab: %v", err)
	}
}
