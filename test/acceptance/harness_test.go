package acceptance

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"github.com/leasehold/leasehold/test/lhtest"
)

// probeTimeout overrides the client probe's timeout (benchmarks).
var probeTimeout time.Duration

const (
	probePort = 8080
	etcdPort  = 2379
	raftPort  = 7000
	raftCli   = 7001
	ttl       = time.Second
)

// world: two leasehold nodes (n1 prio 120, n2 prio 100), a quorum host q
// and a client, with the invariant checkers running throughout.
type world struct {
	t       *testing.T
	backend string
	lab     *netlab.Lab
	n1, n2  *netlab.Host
	q       *netlab.Host
	vip     netip.Addr
	mon     *netlab.AddrMonitor
	arp     *netlab.ARPProber
	tcp     *netlab.TCPProber
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	d       map[string]*labdaemon.Daemon
	quorum  *netlab.Proc // etcdserver or the witness
	dir     string
	extra   map[string]string // extra YAML per node, appended to the instance
	// epochBefore is n1's epoch before a fault.
	epochBefore uint64
	// ttl is the lease TTL (default 1 s).
	ttl time.Duration
	// tail is YAML appended after the VI_1 block (more instances).
	tail string
}

func newWorld(t *testing.T, backend string) *world {
	t.Helper()
	lab := netlabtest.NewForTest(t, netlab.Options{Hosts: []string{"n1", "n2", "q"}, Client: true})
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{t: t, backend: backend, lab: lab, n1: lab.Host("n1"), n2: lab.Host("n2"), q: lab.Host("q"),
		vip: lab.VIP4(), ctx: ctx, stop: cancel, d: map[string]*labdaemon.Daemon{}, dir: t.TempDir(), extra: map[string]string{}, ttl: ttl}
	w.mon = netlab.NewAddrMonitor(lab.Timebase(), w.vip, w.n1, w.n2)
	w.arp = netlab.NewARPProber(lab, w.vip)
	w.tcp = netlab.NewTCPProber(lab.Timebase(), lab.Host(netlab.ClientName), netip.AddrPortFrom(w.vip, probePort))
	if probeTimeout > 0 {
		w.tcp.Timeout = probeTimeout
	}
	for _, c := range []interface {
		Run(context.Context) error
		Ready() <-chan struct{}
	}{w.mon, w.arp, netlab.NewResponder(w.n1, probePort), netlab.NewResponder(w.n2, probePort), w.tcp} {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("checker: %v", err)
			}
		}()
		<-c.Ready()
	}
	t.Cleanup(w.close)
	return w
}

func (w *world) close() {
	for _, d := range w.d {
		d.Kill9()
	}
	if w.quorum != nil {
		w.quorum.Signal(syscall.SIGKILL)
		w.quorum.Wait(context.Background())
	}
	w.stop()
	w.wg.Wait()
	if w.t.Failed() {
		for n, d := range w.d {
			w.t.Logf("%s log:\n%s", n, d.Tail(60))
		}
		w.t.Logf("address events: %+v", w.mon.Events())
		w.t.Logf("ARP changes: %+v", w.arp.Changes())
	}
}

// startQuorum starts etcd or the raft witness on q.
func (w *world) startQuorum() {
	w.t.Helper()
	var cmd []string
	switch w.backend {
	case "etcd":
		bin, err := lhtest.EtcdBinary()
		if err != nil {
			w.t.Fatal(err)
		}
		ip := w.q.IPv4.String()
		cmd = []string{bin, "-name", "q", "-data", filepath.Join(w.dir, "etcd"),
			"-client", fmt.Sprintf("http://%s:%d", ip, etcdPort), "-peer", fmt.Sprintf("http://%s:2380", ip)}
	case "raft":
		bin, err := lhtest.Binary()
		if err != nil {
			w.t.Fatal(err)
		}
		conf := filepath.Join(w.dir, "witness.yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf("node: {name: q}\nquorum:\n  backend: raft\n  raft:\n    bind: \"%s:%d\"\n    client_bind: \"%s:%d\"\n    data_dir: %s\n    peers:\n%s",
			w.q.IPv4, raftPort, w.q.IPv4, raftCli, filepath.Join(w.dir, "raft-q"), w.raftPeers())), 0o644)
		cmd = []string{bin, "witness", "-c", conf}
	}
	c := w.q.Command(w.ctx, cmd[0], cmd[1:]...)
	logf, _ := os.Create(filepath.Join(w.dir, "quorum.log"))
	c.Stdout, c.Stderr = logf, logf
	p, err := w.q.StartCmd(c)
	if err != nil {
		w.t.Fatalf("quorum: %v", err)
	}
	w.quorum = p
	port := etcdPort
	if w.backend == "raft" {
		port = raftCli
	}
	addr := netip.AddrPortFrom(w.q.IPv4, uint16(port)).String()
	w.waitFor("the quorum to listen on "+addr, 30*time.Second, func() bool {
		return w.n1.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		}) == nil
	})
}

func (w *world) raftPeers() string {
	var b strings.Builder
	for _, h := range []*netlab.Host{w.n1, w.n2, w.q} {
		fmt.Fprintf(&b, "      - {id: %s, addr: \"%s:%d\", client: \"%s:%d\"}\n", h.Name, h.IPv4, raftPort, h.IPv4, raftCli)
	}
	return b.String()
}

func (w *world) quorumYAML(h *netlab.Host) string {
	switch w.backend {
	case "etcd":
		return fmt.Sprintf("quorum:\n  backend: etcd\n  ttl: %s\n  etcd: {endpoints: [\"http://%s:%d\"]}\n", w.ttl, w.q.IPv4, etcdPort)
	default:
		return fmt.Sprintf("quorum:\n  backend: raft\n  ttl: %s\n  raft:\n    bind: \"%s:%d\"\n    client_bind: \"%s:%d\"\n    data_dir: %%DIR%%/raft\n    peers:\n%s",
			w.ttl, h.IPv4, raftPort, h.IPv4, raftCli, w.raftPeers())
	}
}

// startNode runs leasehold on h with priority prio.
func (w *world) startNode(h *netlab.Host, prio int) *labdaemon.Daemon {
	w.t.Helper()
	// extra: top-level blocks first (lines not indented), then instance keys.
	var top, inst strings.Builder
	for _, l := range strings.SplitAfter(w.extra[h.Name], "\n") {
		if strings.HasPrefix(l, "    ") {
			inst.WriteString(l)
		} else {
			top.WriteString(l)
		}
	}
	conf := fmt.Sprintf("node: {name: %s}\n%s%sstatus: {listen: \"unix:%%SOCK%%\"}\nstate_dir: %%DIR%%/state\nvrrp_instance:\n  VI_1:\n    interface: %s\n    virtual_router_id: 51\n    priority: %d\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddress: [\"%s/24\"]\n%s",
		h.Name, w.quorumYAML(h), top.String(), h.Iface, prio, w.vip, inst.String())
	conf += strings.ReplaceAll(strings.ReplaceAll(w.tail, "%IFACE%", h.Iface), "%PRIO%", fmt.Sprint(prio))
	bin, err := lhtest.Binary()
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := labdaemon.Start(w.ctx, bin, h, filepath.Join(w.dir, h.Name), conf)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := d.WaitReady(20 * time.Second); err != nil {
		w.t.Fatal(err)
	}
	w.d[h.Name] = d
	return d
}

// upWithExtra is up with the extra YAML set.
func (w *world) upWithExtra() { w.up() }

// up starts the quorum and both nodes and waits for n1 to own the VIP.
func (w *world) up() {
	w.t.Helper()
	w.startQuorum()
	w.startNode(w.n1, 120)
	deadline := time.Now().Add(30 * time.Second)
	for !(w.d["n1"].Role() == "owner" && w.holds("n1")) {
		if time.Now().After(deadline) {
			st, err := w.d["n1"].Status()
			log, _ := os.ReadFile(filepath.Join(w.dir, "quorum.log"))
			w.t.Fatalf("n1 did not own the VIP within 30 s: status %+v (%v)\nquorum log:\n%s", st, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.startNode(w.n2, 100)
	w.waitFor("n2 to be backup", 20*time.Second, func() bool { return w.d["n2"].Role() == "backup" })
	time.Sleep(time.Second)
	if got := w.d["n1"].Role(); got != "owner" {
		w.t.Fatalf("n1 role %q after n2 joined, want owner", got)
	}
}

func (w *world) waitFor(what string, timeout time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) now() netlab.Stamp { return w.lab.Timebase().Now() }

func (w *world) holds(name string) bool {
	for _, h := range w.mon.Holders(w.now()) {
		if h == name {
			return true
		}
	}
	return false
}

// checkNoDualARP is the invariant: never two MACs answering ARP for the VIP.
func (w *world) checkNoDualARP() {
	w.t.Helper()
	if d := w.arp.DualRounds(); len(d) > 0 {
		w.t.Errorf("SPLIT BRAIN: %d ARP probe rounds answered by two MACs, first at %v: %v", len(d), d[0].At, d[0].Hosts)
	}
	// Announcements are gated by the lease: a node without the VIP sends
	// no gratuitous ARP for it.
	if r := netlab.BuildReport(w.vip, netlab.ReportOptions{}, w.mon, w.arp, nil); r.NonHolderGARPTotal() > 0 {
		w.t.Errorf("gratuitous ARPs for the VIP from nodes that did not hold it: %v", r.ARP.NonHolderGARPs)
	}
}

// arpLast returns the last round (after from) in which host answered, and
// the first; zero if none.
func (w *world) arpAnswers(host string, from netlab.Stamp) (first, last netlab.Stamp) {
	for _, r := range w.arp.Rounds() {
		if r.At.Before(from) {
			continue
		}
		for _, h := range r.Hosts {
			if h == host {
				if first.IsZero() {
					first = r.At
				}
				last = r.At
			}
		}
	}
	return first, last
}

func (w *world) lastTCP(from netlab.Stamp) string {
	last := ""
	for _, s := range w.tcp.Samples() {
		if s.OK() && !s.At.Before(from) {
			last = s.Node
		}
	}
	return last
}

// outage sums client TCP outages after from.
func (w *world) outage(from netlab.Stamp) time.Duration {
	var d time.Duration
	for _, iv := range w.tcp.Outages() {
		if iv.End.Before(from) {
			continue
		}
		s := iv.Start
		if s.Before(from) {
			s = from
		}
		d += iv.End.Sub(s)
	}
	return d
}
