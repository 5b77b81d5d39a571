package contrib

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

// The compose lab's topology: services, priorities and how they meet.
var (
	labNodes      = []string{"node1", "node2", "node3"}
	labPriorities = map[string]int{"node1": 200, "node2": 100, "node3": 50}
	labServices   = []string{"redis", "mail", "node1", "node2", "node3", "client"}
)

// composeFile is what `docker-compose config` prints, the fields the
// topology is checked on (1.29.2's form, and Compose v2's long forms).
type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Networks map[string]*struct {
		Driver string `yaml:"driver"`
		IPAM   struct {
			Config []struct {
				Subnet       string            `yaml:"subnet"`
				AuxAddresses map[string]string `yaml:"aux_addresses"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Target string `yaml:"target"`
	} `yaml:"build"`
	CapAdd      []string `yaml:"cap_add"`
	Environment map[string]string
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Networks map[string]*struct {
		IPv4 string `yaml:"ipv4_address"`
	} `yaml:"networks"`
	Volumes         []mount `yaml:"volumes"`
	StopGracePeriod string  `yaml:"stop_grace_period"`
}

// mount is a service's volume: "source:target[:mode]" (1.29.2) or the
// long form (v2).
type mount struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		type long mount
		return n.Decode((*long)(m))
	}
	parts := strings.Split(n.Value, ":")
	if len(parts) < 2 {
		return fmt.Errorf("volume %q: want source:target", n.Value)
	}
	m.Source, m.Target = parts[0], parts[1]
	m.ReadOnly = len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
	m.Type = "volume"
	if strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, ".") {
		m.Type = "bind"
	}
	return nil
}

// composeConfig runs `docker-compose config` on the repository's
// docker-compose.yml: the compose tool's own validation, then its
// normalized output.
func composeConfig(t *testing.T) []byte {
	t.Helper()
	bin := testenv.Need(t, "docker-compose")[0]
	cmd := exec.Command(bin, "-f", "docker-compose.yml", "config")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=mxgate")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("docker-compose config: %v\n%s", err, stderr)
	}
	return out
}

// parseCompose reads docker-compose config's output.
func parseCompose(t *testing.T, out []byte) *composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal(out, &f); err != nil {
		t.Fatalf("docker-compose config output: %v\n%s", err, out)
	}
	return &f
}

// TestComposeLab validates docker-compose.yml with Debian's
// docker-compose and checks the lab's topology in what it printed.
func TestComposeLab(t *testing.T) {
	f := parseCompose(t, composeConfig(t))
	if p := topologyProblems(f, dockerfileStages(t)); len(p) > 0 {
		t.Fatalf("the compose lab:\n%s", strings.Join(p, "\n"))
	}
}

// TestComposeTopologyCatches proves each check can fail: the lab with one
// thing broken is reported for that thing.
func TestComposeTopologyCatches(t *testing.T) {
	stages := dockerfileStages(t)
	cases := []struct {
		name   string
		mutate func(*composeFile)
		want   string
	}{
		{"no NET_RAW", func(f *composeFile) { f.Services["node2"].CapAdd = []string{"NET_ADMIN"} }, "node2: cap_add"},
		{"node file of another node", func(f *composeFile) {
			m := &f.Services["node3"].Volumes[0]
			m.Source = strings.Replace(m.Source, "node3.yaml", "node1.yaml", 1)
		}, "node3: node.id"},
		{"no healthcheck", func(f *composeFile) { f.Services["mail"].Healthcheck = nil }, "mail: no healthcheck"},
		{"VIP not reserved", func(f *composeFile) { f.Networks["mxnet"].IPAM.Config[0].AuxAddresses = nil }, "reserve the VIP"},
		{"VIP given to a container", func(f *composeFile) { f.Services["client"].Networks["mxnet"].IPv4 = "172.28.0.100" }, "client: has the VIP"},
		{"short stop", func(f *composeFile) { f.Services["node1"].StopGracePeriod = "10s" }, "node1: stop_grace_period"},
		{"no data volume", func(f *composeFile) { f.Services["node2"].Volumes = f.Services["node2"].Volumes[:1] }, "node2: no volume at node.data_dir"},
		{"no redis", func(f *composeFile) { delete(f.Services, "redis") }, "no service redis"},
		{"wrong token", func(f *composeFile) { f.Services["node1"].Environment["MXGATE_TOKEN"] = "x" }, "node1: MXGATE_TOKEN"},
		{"unknown build target", func(f *composeFile) { f.Services["client"].Build.Target = "nope" }, "client: build target"},
	}
	out := composeConfig(t)
	if p := topologyProblems(parseCompose(t, out), stages); len(p) > 0 {
		t.Fatalf("the lab itself: %v", p)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := parseCompose(t, out)
			c.mutate(f)
			p := topologyProblems(f, stages)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
				t.Fatalf("want a problem with %q, got %q", c.want, p)
			}
		})
	}
}

// dockerfileStages maps each stage name of the Dockerfile to its text.
func dockerfileStages(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?im)^FROM\s+\S+\s+AS\s+(\S+)\s*$`)
	stages := map[string]string{}
	locs := from.FindAllSubmatchIndex(b, -1)
	for i, l := range locs {
		end := len(b)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		stages[string(b[l[2]:l[3]])] = string(b[l[0]:end])
	}
	return stages
}

// topologyProblems checks the lab the README walks through: three nodes
// with VRRP's capabilities and priorities 200/100/50 on one VIP that
// Docker never hands out, sharing Redis, relaying to the mail server, a
// client with swaks, healthchecks and volumes everywhere; and that the
// node files mounted into the nodes say the same as the compose file.
func topologyProblems(f *composeFile, stages map[string]string) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if len(f.Networks) != 1 || f.Networks["mxnet"] == nil {
		add("want one network mxnet, got %d", len(f.Networks))
		return p
	}
	nw := f.Networks["mxnet"]
	if nw.Driver != "bridge" || len(nw.IPAM.Config) != 1 {
		add("mxnet: want a bridge with one subnet")
		return p
	}
	subnet, err := netip.ParsePrefix(nw.IPAM.Config[0].Subnet)
	if err != nil || !subnet.Addr().IsPrivate() {
		add("mxnet: subnet %q is not a private prefix", nw.IPAM.Config[0].Subnet)
		return p
	}
	for _, name := range labServices {
		if f.Services[name] == nil {
			add("no service %s", name)
		}
	}
	if len(p) > 0 {
		return p
	}

	addr := map[string]netip.Addr{} // service → its address on mxnet
	for name, s := range f.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 || s.Healthcheck.Test[0] == "NONE" {
			add("%s: no healthcheck", name)
		}
		if s.Build != nil && stages[s.Build.Target] == "" {
			add("%s: build target %q is no stage of the Dockerfile", name, s.Build.Target)
		}
		n := s.Networks["mxnet"]
		a, err := netip.ParseAddr(func() string {
			if n == nil {
				return ""
			}
			return n.IPv4
		}())
		if err != nil || !subnet.Contains(a) {
			add("%s: no fixed address in %s", name, subnet)
			continue
		}
		for other, oa := range addr {
			if oa == a {
				add("%s and %s share %s", name, other, a)
			}
		}
		addr[name] = a
	}
	volume := func(service, target string) (mount, bool) {
		for _, m := range f.Services[service].Volumes {
			if m.Target == target {
				if m.Type == "volume" && f.Volumes[m.Source] == nil {
					add("%s: volume %s is not declared", service, m.Source)
				}
				return m, true
			}
		}
		return mount{}, false
	}
	if m, ok := volume("redis", "/data"); !ok || m.Type != "volume" {
		add("redis: no volume at /data")
	}
	if m, ok := volume("mail", "/var/mail/sink"); !ok || m.Type != "volume" {
		add("mail: no volume at /var/mail/sink (the mail you look into)")
	}
	if t := f.Services["client"].Build; t == nil || !strings.Contains(stages[t.Target], "swaks") {
		add("client: not built with swaks")
	}

	var vip netip.Prefix
	var vrid int
	for _, name := range labNodes {
		s := f.Services[name]
		for _, c := range []string{"NET_ADMIN", "NET_RAW"} {
			if !slices.Contains(s.CapAdd, c) {
				add("%s: cap_add lacks %s (VRRP)", name, c)
			}
		}
		if s.Build == nil || !strings.Contains(stages[s.Build.Target], "setcap cap_net_admin,cap_net_raw,cap_net_bind_service") {
			add("%s: its image's binary lacks the file capabilities its user needs", name)
		}
		m, ok := volume(name, "/etc/mxgate/mxgate.yaml")
		if !ok || m.Type != "bind" || !m.ReadOnly {
			add("%s: the node file is not mounted read-only at /etc/mxgate/mxgate.yaml", name)
			continue
		}
		cfg, err := config.Load(m.Source)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			add("%s: node file %s: %v", name, m.Source, err)
			continue
		}
		if cfg.Node.ID != name {
			add("%s: node.id is %q (%s)", name, cfg.Node.ID, m.Source)
		}
		if cfg.Cluster.Priority != labPriorities[name] {
			add("%s: priority %d, want %d", name, cfg.Cluster.Priority, labPriorities[name])
		}
		if data, ok := volume(name, cfg.Node.DataDir); !ok || data.Type != "volume" {
			add("%s: no volume at node.data_dir %s", name, cfg.Node.DataDir)
		}
		if tok := s.Environment["MXGATE_TOKEN"]; tok != cfg.Admin.Token {
			add("%s: MXGATE_TOKEN %q is not admin.token (the healthcheck and the CLI use it)", name, tok)
		}
		if s.Healthcheck != nil && !slices.Contains(s.Healthcheck.Test, "mxgate") {
			add("%s: the healthcheck does not ask the node itself", name)
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= cfg.SMTP.DrainTimeout.Duration+30*time.Second {
			add("%s: stop_grace_period %q is not more than drain_timeout + 30s (the node's own stop bound)", name, s.StopGracePeriod)
		}
		p = append(p, nodeFileProblems(name, cfg, addr)...)
		cv, err := netip.ParsePrefix(cfg.Cluster.VIP)
		if err != nil {
			continue
		}
		if vip.IsValid() && (cv != vip || cfg.Cluster.VRID != vrid) {
			add("%s: VIP %s VRID %d, the others %s %d", name, cv, cfg.Cluster.VRID, vip, vrid)
		}
		vip, vrid = cv, cfg.Cluster.VRID
	}
	if !vip.IsValid() {
		return p
	}
	if vip.Bits() != subnet.Bits() || !subnet.Contains(vip.Addr()) {
		add("the VIP %s is not on mxnet %s", vip, subnet)
	}
	if !slices.Contains(mapValues(nw.IPAM.Config[0].AuxAddresses), vip.Addr().String()) {
		add("mxnet: aux_addresses must reserve the VIP %s, or Docker may give it to a container", vip.Addr())
	}
	for name, a := range addr {
		if a == vip.Addr() {
			add("%s: has the VIP %s as its own address", name, a)
		}
	}
	return p
}

// nodeFileProblems checks that a node's file points where the compose
// file puts things: the VIP on eth0 port 25, Redis, the mail server, its
// own peer address and the other nodes.
func nodeFileProblems(name string, cfg config.Config, addr map[string]netip.Addr) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, name+": "+fmt.Sprintf(format, args...)) }
	cl := cfg.Cluster
	if !cl.Enabled || cl.Interface != "eth0" {
		add("the cluster is not enabled on eth0")
	}
	if vip, err := netip.ParsePrefix(cl.VIP); err == nil && !slices.Contains(cfg.SMTP.Listen, net.JoinHostPort(vip.Addr().String(), "25")) {
		add("smtp.listen %v lacks the VIP's port 25", cfg.SMTP.Listen)
	}
	if host := hostOf(strings.TrimPrefix(cfg.Store.Redis, "redis://")); host != addr["redis"].String() {
		add("store.redis %q is not the redis service (%s)", cfg.Store.Redis, addr["redis"])
	}
	if hostOf(cfg.Downstream.Address) != addr["mail"].String() {
		add("downstream.address %q is not the mail service (%s)", cfg.Downstream.Address, addr["mail"])
	}
	if hostOf(cl.PeerListen) != addr[name].String() {
		add("cluster.peer_listen %q is not its own address %s", cl.PeerListen, addr[name])
	}
	var others []string
	for _, o := range labNodes {
		if o != name {
			others = append(others, addr[o].String())
		}
	}
	if len(cl.UnicastPeers) > 0 && !slices.Equal(sorted(cl.UnicastPeers), sorted(others)) {
		add("cluster.unicast_peers %v, want the other nodes %v", cl.UnicastPeers, others)
	}
	var peers []string
	for _, pe := range cl.Peers {
		peers = append(peers, hostOf(pe.Address))
	}
	if !slices.Equal(sorted(peers), sorted(others)) {
		add("cluster.peers at %v, want the other nodes %v", peers, others)
	}
	return p
}

// hostOf is the host of host:port[/path].
func hostOf(s string) string {
	s, _, _ = strings.Cut(s, "/")
	h, port, err := net.SplitHostPort(s)
	if _, perr := strconv.Atoi(port); err != nil || perr != nil {
		return ""
	}
	return h
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mapValues(m map[string]string) []string {
	var v []string
	for _, x := range m {
		v = append(v, x)
	}
	return v
}
