// Package daemontest is an in-memory daemon.Platform for unit tests: VRRP
// sockets and announcers on a vrrptest.Segment, the quorum of a
// quorumtest.Memory, an in-memory kernel fence (fencingtest.Fence), VIP
// addresses with kernel lifetimes, a fake watchdog, a fake DRBD per host
// (drbdtest.Host), an in-memory IPVS table and real-server checks
// (lvstest) and no status API. A
// World holds the shared pieces of several nodes and checks the safety
// invariant over them: never two nodes answering for a VIP (VIP configured
// and the fence letting it through).
//
// It models what the daemon asks of the OS, not the OS: no ARP caches, no
// packet timing beyond the segment's delivery, addresses vanish exactly
// at their lifetime (the kernel takes up to 1.25 s more). Build a World and
// run the daemons inside one testing/synctest bubble.
package daemontest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/fencing/fencingtest"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/lvs/lvstest"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/quorumtest"
	"github.com/leasehold/leasehold/quorum/raft"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/drbd/drbdtest"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
	"github.com/leasehold/leasehold/vrrp/vrrptest"
)

// World is the shared L2 segment and quorum of a set of nodes.
type World struct {
	Seg    *vrrptest.Segment
	Quorum *quorumtest.Memory

	mu         sync.Mutex
	nodes      map[string]*Node
	drbd       map[string]*drbdtest.Host
	mysql      map[string]*mysqltest.Fake
	violations []string
}

// NewWorld returns a world whose quorum accepts TTLs down to minTTL.
func NewWorld(minTTL time.Duration) *World {
	return &World{Seg: vrrptest.NewSegment(), Quorum: quorumtest.NewMemory(minTTL), nodes: map[string]*Node{},
		drbd: map[string]*drbdtest.Host{}, mysql: map[string]*mysqltest.Fake{}}
}

// Node is one host's platform; it implements daemon.Platform.
type Node struct {
	w    *World
	Name string
	Addr netip.Addr
	// Kernel is the node's in-memory kernel fence.
	Kernel *fencingtest.Fence
	// Dog is the node's watchdog device (always there; set ArmErr to
	// make arming fail).
	Dog *Watchdog
	// DRBDHost is the node's fake DRBD (World.DRBDHost).
	DRBDHost *drbdtest.Host
	// MySQLServer is the node's fake MySQL server (nil: none).
	MySQLServer *mysqltest.Fake
	// IPVS is the node's in-memory IPVS table; Checks answers its
	// real-server checks (all succeed until told otherwise).
	IPVS   *lvstest.Kernel
	Checks *lvstest.Prober
	addrs  *addresses
}

// DRBDHost returns host name's fake DRBD, resource r0 on /dev/drbd0
// (Secondary, UpToDate, StandAlone until drbdtest.Link), creating it on
// first use: set it up before starting that node's daemon.
func (w *World) DRBDHost(name string) *drbdtest.Host {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drbdHostLocked(name)
}

func (w *World) drbdHostLocked(name string) *drbdtest.Host {
	h := w.drbd[name]
	if h == nil {
		h = drbdtest.NewHost("r0", 0)
		w.drbd[name] = h
	}
	return h
}

// MySQLServer returns host name's fake MySQL server (read-only, server id
// the number of hosts made before it plus one), creating it on first use:
// set it up before starting that node's daemon.
func (w *World) MySQLServer(name string) *mysqltest.Fake {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mysqlLocked(name)
}

func (w *World) mysqlLocked(name string) *mysqltest.Fake {
	f := w.mysql[name]
	if f == nil {
		f = &mysqltest.Fake{ServerID: uint32(len(w.mysql) + 1), RO: true}
		w.mysql[name] = f
	}
	return f
}

// Node returns the platform of host name with address addr.
func (w *World) Node(name string, addr netip.Addr) *Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := &Node{w: w, Name: name, Addr: addr, Kernel: fencingtest.New(time.Now), Dog: &Watchdog{}, DRBDHost: w.drbdHostLocked(name),
		MySQLServer: w.mysqlLocked(name), IPVS: lvstest.NewKernel(), Checks: lvstest.NewProber()}
	n.addrs = &addresses{n: n, up: map[vipaddr.VIP]time.Time{}}
	w.nodes[name] = n
	return n
}

var _ daemon.Platform = (*Node)(nil)

// VRRPSocket implements daemon.Platform.
func (n *Node) VRRPSocket(iface string, six bool) (vrrp.Socket, error) {
	return n.w.Seg.Socket(n.Name, n.Addr, six), nil
}

// Announcer implements daemon.Platform.
func (n *Node) Announcer(iface string, vips []netip.Addr) (vrrp.VIPAnnouncer, error) {
	return n.w.Seg.Announcer(n.Name), nil
}

// Prober implements daemon.Platform: probes answered by the segment.
func (n *Node) Prober(iface string, vips []netip.Addr) node.Prober {
	return daemon.NewProber(n.w.Seg.Prober(n.Name), iface, vips)
}

// Addresses implements daemon.Platform.
func (n *Node) Addresses(string) daemon.Addresses { return n.addrs }

// Fence implements daemon.Platform: the in-memory nftables fence.
func (n *Node) Fence(ctx context.Context, mode string, log *slog.Logger) (fencing.Fence, string, error) {
	if err := n.Kernel.Install(ctx); err != nil {
		return nil, "", err
	}
	return n.Kernel, "in-memory fence", nil
}

// Watchdog implements daemon.Platform: the node's Dog.
func (n *Node) Watchdog(string, fencing.WatchdogMode, *slog.Logger) daemon.Watchdog {
	return n.Dog
}

// Quorum implements daemon.Platform: a client of the world's quorum.
func (n *Node) Quorum(p *daemon.Plan, log *slog.Logger) (quorum.Backend, error) {
	return n.w.Quorum.Client(n.Name, p.Quorum), nil
}

// Voter implements daemon.Platform: the in-memory quorum needs no voter.
func (n *Node) Voter(raft.Config, *slog.Logger) (daemon.Voter, error) { return voter{}, nil }

// LVS implements daemon.Platform: the node's IPVS and Checks.
func (n *Node) LVS() (lvs.Kernel, lvs.Prober, error) { return n.IPVS, n.Checks, nil }

// StatusListener implements daemon.Platform: no status API.
func (n *Node) StatusListener(string) (net.Listener, error) { return nil, nil }

// DRBD implements daemon.Platform: the node's fake DRBD host.
func (n *Node) DRBD() drbd.Executor { return n.DRBDHost }

// MySQL implements daemon.Platform: the node's fake MySQL server
// (World.MySQLServer), no peer.
func (n *Node) MySQL(mysql.Config) (mysql.Server, mysql.Server, error) {
	return n.MySQLServer, nil, nil
}

type voter struct{}

func (voter) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Watchdog is an in-memory watchdog device: it records arming and feeds;
// it never resets anything.
type Watchdog struct {
	mu sync.Mutex
	// ArmErr, when set, makes Arm fail (a device that refuses its timeout).
	ArmErr error
	armed  bool
	feeds  int
}

func (w *Watchdog) Probe() error { return nil }
func (w *Watchdog) Armed() bool  { w.mu.Lock(); defer w.mu.Unlock(); return w.armed }

// Feeds counts the feeds since the node started.
func (w *Watchdog) Feeds() int { w.mu.Lock(); defer w.mu.Unlock(); return w.feeds }

func (w *Watchdog) Arm(time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ArmErr != nil {
		return w.ArmErr
	}
	w.armed = true
	return nil
}
func (w *Watchdog) Feed() error { w.mu.Lock(); defer w.mu.Unlock(); w.feeds++; return nil }
func (w *Watchdog) Disarm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	return nil
}

// addresses are a node's VIPs; one with a lifetime vanishes when it ends,
// as the kernel drops it.
type addresses struct {
	n  *Node
	mu sync.Mutex
	up map[vipaddr.VIP]time.Time // expiry; zero: forever
}

func (a *addresses) Add(v vipaddr.VIP, lifetime time.Duration) error {
	a.mu.Lock()
	exp := time.Time{}
	if lifetime > 0 {
		exp = time.Now().Add(lifetime)
	}
	a.up[v] = exp
	a.mu.Unlock()
	a.n.w.Seg.Claim(a.n.Name, v.Prefix.Addr())
	a.n.w.check()
	return nil
}

func (a *addresses) Remove(v vipaddr.VIP) error {
	a.mu.Lock()
	delete(a.up, v)
	a.mu.Unlock()
	a.n.w.Seg.Release(a.n.Name, v.Prefix.Addr())
	return nil
}

func (a *addresses) RemoveOrphans() ([]vipaddr.VIP, error) { return nil, nil }

// has reports whether vip is configured now (lifetime not over).
func (a *addresses) has(vip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for v, exp := range a.up {
		if v.Prefix.Addr() == vip && (exp.IsZero() || time.Now().Before(exp)) {
			return true
		}
	}
	return false
}

// Answering reports whether the node answers for vip: configured and let
// through by its fence.
func (n *Node) Answering(vip netip.Addr) bool {
	return n.addrs.has(vip) && n.Kernel.Passes(vip)
}

// AnsweringNodes lists the nodes answering for vip now.
func (w *World) AnsweringNodes(vip netip.Addr) []string {
	w.mu.Lock()
	nodes := make([]*Node, 0, len(w.nodes))
	for _, n := range w.nodes {
		nodes = append(nodes, n)
	}
	w.mu.Unlock()
	var out []string
	for _, n := range nodes {
		if n.Answering(vip) {
			out = append(out, n.Name)
		}
	}
	return out
}

// Watch samples who answers for vips every interval until ctx ends,
// recording any instant with two or more (see Violations). Run it in a
// goroutine of the test's bubble.
func (w *World) Watch(ctx context.Context, interval time.Duration, vips ...netip.Addr) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, v := range vips {
			w.record(v, w.AnsweringNodes(v))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *World) record(vip netip.Addr, answering []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(answering) > 1 {
		w.violations = append(w.violations, fmt.Sprintf("%s: %v answering at %v", vip, answering, time.Now().Format(time.StampMicro)))
	}
}

// check is run at every VIP addition: the instant a second node would
// answer is caught even between samples (the fence is armed before the
// address goes up).
func (w *World) check() {
	w.mu.Lock()
	vips := map[netip.Addr]bool{}
	for _, n := range w.nodes {
		n.addrs.mu.Lock()
		for v := range n.addrs.up {
			vips[v.Prefix.Addr()] = true
		}
		n.addrs.mu.Unlock()
	}
	w.mu.Unlock()
	for v := range vips {
		w.record(v, w.AnsweringNodes(v))
	}
}

// Violations lists every instant two nodes answered for one VIP.
func (w *World) Violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}
