package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxgate/mxgate/lab"
)

// The lab's fixed parts, besides package lab's nodes and client.
const (
	nodes     = 3
	redisHost = "redis"
	redisAddr = "198.18.0.2"
	mailHost  = "mail"
	mailAddr  = "198.18.0.25"
	adminPort = 8025
	peerPort  = 8026
	domain    = "example.org" // what the gateway accepts mail for
)

// priority is node i's VRRP priority: n1 is the master.
func priority(i int) int { return [...]int{200, 100, 50}[i-1] }

// state is what up leaves in STATE/NAME/lab.json for status and down.
type state struct {
	Name  string     `json:"name"`
	Dir   string     `json:"dir"`
	Bin   string     `json:"bin"`
	Token string     `json:"token,omitempty"`
	Bare  bool       `json:"bare,omitempty"`
	Procs []lab.Proc `json:"procs"`
}

func (s *state) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, "lab.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the lab's state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.Dir, "lab.json"))
}

// load reads the state up left; (nil, nil) when there is none.
func load(o options) (*state, error) {
	b, err := os.ReadFile(filepath.Join(o.dir(), "lab.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lab's state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read the lab's state %s: %w", filepath.Join(o.dir(), "lab.json"), err)
	}
	return &s, nil
}

func (s *state) proc(name string) (lab.Proc, bool) {
	for _, p := range s.Procs {
		if p.Name == name {
			return p, true
		}
	}
	return lab.Proc{}, false
}

// up builds the lab and starts its processes; on any failure it removes
// what it built, so a failed up leaves nothing behind either.
func up(ctx context.Context, o options, out io.Writer) (err error) {
	var bin string
	tools := map[string]string{}
	if !o.bare {
		if bin, err = filepath.Abs(o.bin); err != nil {
			return err
		}
		if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("no mxgate binary at %s (make build)", bin)
		}
		for _, t := range []struct{ name, pkg string }{{"redis-server", "redis-server"}, {"smtp-sink", "postfix"}} {
			p, err := lookPath(t.name)
			if err != nil {
				return fmt.Errorf("%s not found (apt-get install %s)", t.name, t.pkg)
			}
			tools[t.name] = p
		}
	}
	if _, err := lookPath("ip"); err != nil {
		return errors.New("ip not found (apt-get install iproute2)")
	}
	if nss := lab.Namespaces(o.name); len(nss) > 0 {
		return fmt.Errorf("lab %s exists (namespaces %s): make lab-down LAB=%s first", o.name, strings.Join(nss, " "), o.name)
	}
	if _, err := os.Stat(o.dir()); err == nil {
		return fmt.Errorf("lab %s exists (state %s): make lab-down LAB=%s first", o.name, o.dir(), o.name)
	}
	if err := os.MkdirAll(o.dir(), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	s := &state{Name: o.name, Dir: o.dir(), Bin: bin, Bare: o.bare}
	if !o.bare {
		s.Token = random(12)
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(out, "lab %s did not come up; removing what was built\n", o.name)
			if derr := down(context.WithoutCancel(ctx), o, io.Discard); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if err := s.save(); err != nil {
		return err
	}

	start := time.Now()
	l, err := lab.Create(ctx, o.name, nodes)
	if err != nil {
		return err
	}
	defer l.Close()
	if o.ipv6 {
		if err := l.EnableIPv6(ctx); err != nil {
			return err
		}
	}
	if o.bare {
		fmt.Fprintf(out, "lab %s is up, bare: namespaces %s\n", o.name, strings.Join(l.Namespaces(), " "))
		return nil
	}
	for _, h := range []struct{ name, addr string }{{redisHost, redisAddr}, {mailHost, mailAddr}} {
		if err := l.AddHost(ctx, h.name, h.addr); err != nil {
			return err
		}
	}

	// Redis: the nodes' shared store. Nothing persists: the lab is
	// thrown away whole.
	redis, err := s.spawn(l, "redis", l.Host(redisHost), filepath.Join(s.Dir, "redis.log"),
		tools["redis-server"], "--bind", redisAddr, "--port", "6379", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.Dir)
	if err != nil {
		return err
	}
	if err := waitAnswer(ctx, l, redis, redisAddr+":6379", "PING\r\n", "+PONG", 10*time.Second); err != nil {
		return err
	}

	// The organisation's mail server: smtp-sink writes every message it
	// accepts into a file of its own, after dropping root.
	mail := filepath.Join(s.Dir, "mail")
	if err := os.MkdirAll(mail, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(mail, 0o777); err != nil {
		return err
	}
	sink, err := s.spawn(l, "mail", l.Host(mailHost), filepath.Join(s.Dir, "mail.log"),
		tools["smtp-sink"], "-u", "nobody", "-h", "mail.example.org", "-d", mail+"/%Y%m%d-%H%M%S.", mailAddr+":25", "256")
	if err != nil {
		return err
	}
	if err := waitAnswer(ctx, l, sink, mailAddr+":25", "", "220 ", 10*time.Second); err != nil {
		return err
	}

	for i := 1; i <= nodes; i++ {
		d := filepath.Join(s.Dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		cfg := filepath.Join(d, "mxgate.yaml")
		if err := os.WriteFile(cfg, []byte(nodeFile(i, d, s.Token)), 0o600); err != nil {
			return fmt.Errorf("node file of n%d: %w", i, err)
		}
		p, err := s.spawn(l, fmt.Sprintf("n%d", i), l.Node(i), filepath.Join(d, "log"), bin, "serve", "-c", cfg)
		if err != nil {
			return err
		}
		if err := waitAnswer(ctx, l, p, lab.NodeAddr(i)+":25", "", fmt.Sprintf("220 n%d.lab.test ", i), 30*time.Second); err != nil {
			return err
		}
	}
	n1, _ := s.proc("n1")
	if err := waitAnswer(ctx, l, n1, lab.VIP+":25", "", "220 n1.lab.test ", 30*time.Second); err != nil {
		return fmt.Errorf("the VIP: %w", err)
	}
	// The command lines now, after ip's exec and redis-server's retitling:
	// down compares them before it signals anything.
	for i := range s.Procs {
		if err := s.Procs[i].Settle(); err != nil {
			return err
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab %s is up (%s)\n\n", o.name, time.Since(start).Round(100*time.Millisecond))
	guide(out, s, l)
	return nil
}

// spawn starts a process in ns and records it at once, so that down finds
// it whatever happens next.
func (s *state) spawn(l *lab.Lab, name, ns, log string, argv ...string) (lab.Proc, error) {
	p, err := lab.Spawn(name, ns, log, argv...)
	if p.PID != 0 {
		s.Procs = append(s.Procs, p)
		if serr := s.save(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return p, err
}

// waitAnswer waits until addr, dialled from the client namespace, answers
// send with a line starting with want, while p still runs. When p ends
// first, the error holds the end of its log.
func waitAnswer(ctx context.Context, l *lab.Lab, p lab.Proc, addr, send, want string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited at start:\n%s", p.Name, tail(p.Log, 20))
		}
		if last = answer(ctx, l, addr, send, want); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s on %s: no answer %q after %s: %v\n%s", p.Name, addr, want, within, last, tail(p.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func answer(ctx context.Context, l *lab.Lab, addr, send, want string) error {
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := l.Dial(dctx, l.Client(), addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			return err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("answered %q", strings.TrimSpace(line))
	}
	if strings.HasPrefix(line, "220 ") {
		io.WriteString(c, "QUIT\r\n")
	}
	return nil
}

// tail is the last n lines of a file, for errors.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lookPath finds a program on PATH or in the sbin directories (smtp-sink
// lives in /usr/sbin, which a user's PATH may lack).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// nodeFile is node i's configuration: SMTP on the VIP and its own address,
// the shared Redis, the mail server downstream, the admin API on every
// address, active-active with the other nodes as static peers.
func nodeFile(i int, dir, token string) string {
	var peers strings.Builder
	for j := 1; j <= nodes; j++ {
		if j != i {
			fmt.Fprintf(&peers, "    - {id: n%d, address: \"%s:%d\", weight: 100}\n", j, lab.NodeAddr(j), peerPort)
		}
	}
	return fmt.Sprintf(`# Node n%[1]d of the lab (written by mxgate-lab up).
node: {id: n%[1]d, data_dir: %[2]s/data, log_level: info}
smtp:
  listen: ["%[3]s:25", "%[4]s:25"]
  hostname: n%[1]d.lab.test
  accept_domains: [%[5]s]
downstream: {address: "%[6]s:25"}
store: {redis: "redis://%[7]s:6379/0"}
admin: {listen: "0.0.0.0:%[8]d", token: "%[9]s"}
cluster:
  enabled: true
  interface: eth0
  vrid: 51
  vip: %[3]s/%[10]d
  priority: %[11]d
  advert_interval: 1s
  preempt: true
  secret: lab-secret-%[9]s
  mode: active-active
  weight: 100
  peer_listen: "%[4]s:%[12]d"
  peers:
%[13]s`, i, dir, lab.VIP, lab.NodeAddr(i), domain, mailAddr, redisAddr, adminPort, token,
		lab.Prefix, priority(i), peerPort, peers.String())
}
