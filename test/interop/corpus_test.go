package interop

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/config/keepalived"
	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
)

// TestCorpusAsKeepalivedRunsIt starts the real keepalived (-d: it logs its
// configuration as it will run it) on every file of the importer's corpus
// that imports and on the seed documents' configs, and compares each
// instance with the import: start state, priority, version, advert
// interval, accept, preempt, authentication, addresses, unicast peers,
// tracked interfaces and scripts with their weights. It is the check
// behind "the import is what keepalived ran". Files with LVS blocks are
// skipped where the kernel has no IPVS (keepalived stops there).
func TestCorpusAsKeepalivedRunsIt(t *testing.T) {
	files, _ := filepath.Glob("../../config/keepalived/testdata/corpus/*/*.conf")
	seeds, _ := filepath.Glob("../../config/keepalived/testdata/*-*.conf") // the seed documents' configs
	files = append(files, seeds...)
	lab := netlabtest.NewForTest(t, netlab.Options{Hosts: []string{"k"}}, "/usr/sbin/keepalived")
	h := lab.Host("k")
	made := map[string]bool{h.Iface: true}
	for _, path := range files {
		base := strings.TrimSuffix(path, ".conf")
		_, golden := os.Stat(base + ".yaml")
		if strings.Contains(path, "/corpus/") && golden != nil || strings.Contains(path, "/bad-") {
			continue // refused by the importer
		}
		t.Run(strings.TrimPrefix(path, "../../config/keepalived/testdata/"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			opt := keepalived.Options{ReadFile: os.ReadFile, Glob: filepath.Glob,
				LookPath: func(prog string) (string, error) { return "/usr/bin/" + prog, nil }}
			var args []string
			if b, err := os.ReadFile(base + ".opts"); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if id, ok := strings.CutPrefix(l, "config-id "); ok {
						opt.ConfigID = id
						args = append(args, "-i", id)
					}
				}
			}
			im, err := keepalived.Import(path, data, opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range interfaces(im.Config) {
				if !made[name] {
					addVeth(t, h, name, len(made))
					made[name] = true
				}
			}
			abs, _ := filepath.Abs(path)
			dump, raw := keepalivedDump(t, h, abs, len(im.Config.Instance), args...)
			for _, name := range im.Config.Names() {
				ka, ok := dump[name]
				if !ok {
					t.Errorf("%s: not in keepalived's dump", name)
					continue
				}
				compareInstance(t, name, im.Config, ka)
			}
			if t.Failed() {
				t.Logf("keepalived's output:\n%s", raw)
			}
		})
	}
}

// interfaces names every interface the config uses.
func interfaces(c *config.Config) []string {
	var out []string
	for _, in := range c.Instance {
		out = append(out, in.Interface)
		for _, v := range in.VIPs {
			out = append(out, v.Dev)
		}
		for _, tr := range in.Tracks {
			out = append(out, tr.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// addVeth adds interface name (up, with an IPv4 address) to h's namespace.
func addVeth(t *testing.T, h *netlab.Host, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer := fmt.Sprintf("kp%d", n)
	for _, cmd := range [][]string{
		{"ip", "-n", h.NS, "link", "add", name, "type", "veth", "peer", "name", peer},
		{"ip", "-n", h.NS, "link", "set", peer, "up"},
		{"ip", "-n", h.NS, "link", "set", name, "up"},
		{"ip", "-n", h.NS, "addr", "add", fmt.Sprintf("198.18.%d.1/24", n), "dev", name},
	} {
		if out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, out)
		}
	}
}

// kaInstance is an instance as keepalived's -d dump shows it.
type kaInstance struct {
	fields  map[string]string
	vips    []string
	peers   []string
	ifaces  map[string]int
	scripts map[string]int
}

// keepalivedDump runs keepalived on conf in h until it has logged its
// instances (-d) and parses them.
func keepalivedDump(t *testing.T, h *netlab.Host, conf string, instances int, args ...string) (map[string]*kaInstance, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := append([]string{"-n", "-l", "-D", "-d", "-f", conf, "-p", dir + "/k.pid", "-r", dir + "/v.pid", "-c", dir + "/c.pid"}, args...)
	cmd := h.Command(ctx, "/usr/sbin/keepalived", argv...)
	out := &labdaemon.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: keepalived's VRRP and checker children are
	// stopped with it, and Wait does not wait for an orphan's pipe.
	cmd.SysProcAttr.Setpgid = true
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The VRRP process logs each instance, the last line of each is
	// "Notify priority changes".
	// Then wait for the output to settle: more than one process may log.
	last, quiet := "", 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && quiet < 5; time.Sleep(100 * time.Millisecond) {
		s := out.String()
		if strings.Count(s, "Notify priority changes") >= instances || strings.Contains(s, "Stopped Keepalived") {
			if s == last {
				quiet++
			} else {
				quiet = 0
			}
		}
		last = s
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	cmd.Wait()
	raw := out.String()
	dump := parseDump(raw)
	if strings.Contains(raw, "Can't initialize ipvs") {
		t.Skip("keepalived stops here: no IPVS in this kernel (the file has LVS blocks)")
	}
	if len(dump) == 0 {
		t.Fatalf("no instance in keepalived's output:\n%s", raw)
	}
	return dump, raw
}

// parseDump reads the instances of keepalived's -d output.
func parseDump(out string) map[string]*kaInstance {
	all := map[string][]*kaInstance{}
	var cur *kaInstance
	list := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		// "Fri Nov 27 12:33:24 2026: " precedes every line.
		line := sc.Text()
		if i := strings.Index(line, ": "); i >= 0 && i < 30 {
			line = line[i+2:]
		}
		switch {
		case strings.HasPrefix(line, " VRRP Instance = "):
			cur = &kaInstance{fields: map[string]string{}, ifaces: map[string]int{}, scripts: map[string]int{}}
			name := strings.TrimPrefix(line, " VRRP Instance = ")
			all[name] = append(all[name], cur)
			list = ""
		case cur == nil:
		case strings.HasPrefix(line, "     ") && list != "":
			f := strings.Fields(line)
			switch list {
			case "vip":
				cur.vips = append(cur.vips, f[0])
			case "peer":
				cur.peers = append(cur.peers, f[0])
			case "iface", "script":
				w := 0
				if len(f) >= 3 && f[1] == "weight" {
					w, _ = strconv.Atoi(f[2])
				}
				if list == "iface" {
					cur.ifaces[f[0]] = w
				} else {
					cur.scripts[f[0]] = w
				}
			}
		case strings.HasPrefix(line, "   ") && !strings.HasPrefix(line, "    "):
			k, v, _ := strings.Cut(strings.TrimSpace(line), " = ")
			list = ""
			switch {
			case strings.HasPrefix(k, "Virtual IP"):
				list = "vip"
			case strings.HasPrefix(k, "Unicast Peer"):
				list = "peer"
			case strings.HasPrefix(k, "Tracked interfaces"):
				list = "iface"
			case strings.HasPrefix(k, "Tracked scripts"):
				list = "script"
			default:
				cur.fields[k] = v
			}
		case strings.HasPrefix(line, "------<") || strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "  "):
			cur = nil // the next section
		default:
			// A message of another process, in the middle of the dump.
		}
	}
	// The same dump from two processes may interleave: merge them.
	dump := map[string]*kaInstance{}
	for name, seen := range all {
		m := seen[0]
		for _, o := range seen[1:] {
			maps.Copy(m.fields, o.fields)
			maps.Copy(m.ifaces, o.ifaces)
			maps.Copy(m.scripts, o.scripts)
			m.vips = append(m.vips, o.vips...)
			m.peers = append(m.peers, o.peers...)
		}
		dump[name] = m
	}
	return dump
}

func compareInstance(t *testing.T, name string, c *config.Config, ka *kaInstance) {
	t.Helper()
	in := c.Instance[name]
	f := ka.fields
	want := map[string]string{
		"Wantstate":           in.State,
		"Priority":            strconv.Itoa(in.Priority),
		"VRRP Version":        strconv.Itoa(in.Version),
		"Virtual Router ID":   strconv.Itoa(in.VirtualRouterID),
		"Accept":              map[bool]string{true: "enabled", false: "disabled"}[in.Accept],
		"Preempt":             map[bool]string{true: "disabled", false: "enabled"}[in.NoPreempt],
		"Authentication type": map[bool]string{true: "SIMPLE_PASSWORD", false: "none"}[in.Authentication.AuthType == "PASS"],
	}
	if in.Authentication.AuthType == "PASS" {
		want["Password"] = strings.TrimRight(string(in.AuthKey[:]), "\x00")
	}
	if d := in.PreemptDelay.D(); d > 0 {
		want["Preempt delay"] = fmt.Sprintf("%g secs", d.Seconds())
	}
	if in.Version == 3 {
		delete(want, "Authentication type") // not shown for VRRPv3
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s: %s: keepalived %q, import %q (keepalived's fields: %v)", name, k, f[k], v, f)
		}
	}
	ai := in.AdvertInt.D()
	if got := f["Advert interval"]; got != fmt.Sprintf("%g sec", ai.Seconds()) && got != fmt.Sprintf("%d milli-sec", ai.Milliseconds()) {
		t.Errorf("%s: advert interval: keepalived %q, import %v", name, got, ai)
	}
	var vips []string
	for _, v := range in.VIPs {
		vips = append(vips, v.Prefix.Addr().String())
	}
	var kaVIPs []string
	for _, v := range ka.vips {
		if p, err := netip.ParsePrefix(v); err == nil {
			v = p.Addr().String()
		}
		kaVIPs = append(kaVIPs, v)
	}
	if !sameSet(vips, kaVIPs) {
		t.Errorf("%s: addresses: keepalived %v, import %v (raw %q)", name, kaVIPs, vips, ka.vips)
	}
	var peers []string
	for _, p := range in.Peers {
		peers = append(peers, p.String())
	}
	if !sameSet(peers, ka.peers) { // keepalived before 2.3.3 lists a repeated peer twice
		t.Errorf("%s: unicast peers: keepalived %v, import %v", name, ka.peers, peers)
	}
	ifaces := map[string]int{}
	for _, tr := range in.Tracks {
		ifaces[tr.Name] = tr.Weight
	}
	if fmt.Sprint(ifaces) != fmt.Sprint(ka.ifaces) {
		t.Errorf("%s: tracked interfaces: keepalived %v, import %v", name, ka.ifaces, ifaces)
	}
	// Scripts: keepalived drops those whose program is missing here; the
	// import names weighted copies NAME_wN.
	scripts := map[string]int{}
	for _, s := range in.TrackScript {
		sc := c.Script[s]
		base := s
		if i := strings.LastIndex(s, "_w"); i > 0 && c.Script[s[:i]] != nil {
			base = s[:i]
		}
		argv := strings.Fields(sc.Script)
		if _, err := os.Stat(argv[0]); err != nil {
			continue
		}
		scripts[base] = sc.Weight
	}
	for s := range ka.scripts {
		if _, ok := scripts[s]; !ok {
			if _, known := c.Script[s]; known {
				if _, err := os.Stat(strings.Fields(c.Script[s].Script)[0]); err != nil {
					delete(ka.scripts, s)
				}
			}
		}
	}
	if fmt.Sprint(scripts) != fmt.Sprint(ka.scripts) {
		t.Errorf("%s: tracked scripts: keepalived %v, import %v", name, ka.scripts, scripts)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
