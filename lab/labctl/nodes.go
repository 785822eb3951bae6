package labctl

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
)

// priority of the i-th node (0-based): 120, 100, 80, ...
func priority(i int) int { return 120 - 20*i }

func (l *Lab) voters() []*netlab.Host {
	var hs []*netlab.Host
	for _, n := range l.meta.Nodes {
		hs = append(hs, l.net.Host(n))
	}
	return append(hs, l.net.Host(QuorumHost))
}

func (l *Lab) raftPeers() string {
	var b strings.Builder
	for _, h := range l.voters() {
		fmt.Fprintf(&b, "      - {id: %s, addr: \"%s:%d\", client: \"%s:%d\"}\n", h.Name, h.IPv4, RaftPort, h.IPv4, RaftCli)
	}
	return b.String()
}

// writeConfigs writes each node's leasehold.yaml (the acceptance tests'
// recipe: VRRPv3, advert 0.1 s, one instance per group) and the witness's.
func (l *Lab) writeConfigs(o Options) error {
	q := l.net.Host(QuorumHost)
	for i, n := range l.meta.Nodes {
		h := l.net.Host(n)
		dir := filepath.Join(l.dir, n)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var quorum string
		switch o.Quorum {
		case "etcd":
			quorum = fmt.Sprintf("quorum:\n  backend: etcd\n  ttl: %s\n  etcd: {endpoints: [\"http://%s:%d\"]}\n", o.TTL, q.IPv4, EtcdPort)
		default:
			quorum = fmt.Sprintf("quorum:\n  backend: raft\n  ttl: %s\n  raft:\n    bind: \"%s:%d\"\n    client_bind: \"%s:%d\"\n    data_dir: %s\n    peers:\n%s",
				o.TTL, h.IPv4, RaftPort, h.IPv4, RaftCli, filepath.Join(dir, "raft"), l.raftPeers())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# leasehold lab %s, node %s (written by `leasehold lab up`)\nnode: {name: %s}\n%sstatus: {listen: \"unix:%s\"}\nstate_dir: %s\nvrrp_instance:\n",
			l.meta.Name, n, n, quorum, l.sock(n), filepath.Join(dir, "state"))
		auth, err := l.authLine(o)
		if err != nil {
			return err
		}
		for g := 1; g <= o.Groups; g++ {
			fmt.Fprintf(&b, "  VI_%d:\n    interface: %s\n    virtual_router_id: %d\n    priority: %d\n    version: 3\n    advert_int: 0.1\n    virtual_ipaddress: [\"%s/24\"]\n%s",
				g, h.Iface, g, priority(i), l.VIPOf(g), auth)
			if g == 1 && l.meta.MySQL {
				b.WriteString(l.mysqlSection(i))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "leasehold.yaml"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if o.Quorum == "raft" {
		dir := filepath.Join(l.dir, QuorumHost)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		conf := fmt.Sprintf("node: {name: %s}\nquorum:\n  backend: raft\n  ttl: %s\n  raft:\n    bind: \"%s:%d\"\n    client_bind: \"%s:%d\"\n    data_dir: %s\n    peers:\n%s",
			QuorumHost, o.TTL, q.IPv4, RaftPort, q.IPv4, RaftCli, filepath.Join(dir, "raft"), l.raftPeers())
		if err := os.WriteFile(filepath.Join(dir, "witness.yaml"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// EtcdBinary is where the lab finds its etcd server: leasehold-lab-etcd in
// the directory of the leasehold binary bin.
func EtcdBinary(bin string) string { return filepath.Join(filepath.Dir(bin), "leasehold-lab-etcd") }

func (l *Lab) startQuorum() error {
	q := l.net.Host(QuorumHost)
	dir := filepath.Join(l.dir, QuorumHost)
	var args []string
	bin := l.meta.Binary
	switch l.meta.Quorum {
	case "etcd":
		bin = EtcdBinary(l.meta.Binary)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("a lab with quorum etcd runs %s beside the leasehold binary (make build builds both): %w", bin, err)
		}
		args = []string{"-name", QuorumHost, "-data", filepath.Join(dir, "etcd"),
			"-client", fmt.Sprintf("http://%s:%d", q.IPv4, EtcdPort), "-peer", fmt.Sprintf("http://%s:%d", q.IPv4, EtcdPeer)}
	default:
		args = []string{"witness", "-c", filepath.Join(dir, "witness.yaml")}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rec, err := q.StartDetached(l.logPath(QuorumHost), bin, args...)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.meta.QuorumPID = rec
	l.mu.Unlock()
	return l.saveMeta()
}

func (l *Lab) startDaemon(node string) error {
	h := l.net.Host(node)
	if h == nil {
		return fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	rec, err := h.StartDetached(l.logPath(node), l.meta.Binary, "run", "-c", filepath.Join(l.dir, node, "leasehold.yaml"))
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.meta.Daemons[node] = rec
	l.mu.Unlock()
	return l.saveMeta()
}

// NodeStatus is what a drill reads about one node.
type NodeStatus struct {
	Running bool // the daemon process exists (maybe frozen)
	Up      bool // its status API answered
	PID     int  // the daemon's PID
	// StartTime is the daemon's start time as lab.json records it (clock
	// ticks since boot, /proc/PID/stat field 22): with PID, it names the
	// process.
	StartTime uint64
	// Err is why the status API did not answer (Running but not Up).
	Err   string `json:",omitempty"`
	Role  string // of group 1
	Epoch uint64 // of group 1
	Roles []string
}

// Status reads a node's daemon: process and status API.
func (l *Lab) Status(ctx context.Context, node string) (NodeStatus, error) {
	l.mu.Lock()
	rec, ok := l.meta.Daemons[node]
	l.mu.Unlock()
	if !ok {
		return NodeStatus{}, fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	ns := NodeStatus{Running: rec.Alive(), PID: rec.PID, StartTime: rec.StartTime}
	if !ns.Running {
		return ns, nil
	}
	st, err := l.statusOf(ctx, node)
	if err != nil {
		ns.Err = err.Error()
		return ns, nil
	}
	ns.Up = true
	for i, g := range st.Groups {
		if i == 0 {
			ns.Role, ns.Epoch = g.Role, g.Epoch
		}
		ns.Roles = append(ns.Roles, g.Role)
	}
	return ns, nil
}

// Signal sends sig to a node's daemon.
func (l *Lab) Signal(node string, sig syscall.Signal) error {
	l.mu.Lock()
	rec, ok := l.meta.Daemons[node]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	return rec.Signal(sig)
}

// WaitExit waits until a node's daemon has exited.
func (l *Lab) WaitExit(ctx context.Context, node string, timeout time.Duration) error {
	l.mu.Lock()
	rec := l.meta.Daemons[node]
	l.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for rec.Alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("labctl: %s's daemon (pid %d) still running after %v", node, rec.PID, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Restart starts a node's daemon again if it is not running (after kill -9
// or a graceful stop) and waits until its status API answers.
func (l *Lab) Restart(ctx context.Context, node string) error {
	l.mu.Lock()
	rec, ok := l.meta.Daemons[node]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	if !rec.Alive() {
		l.net.Forget(rec)
		if err := l.startDaemon(node); err != nil {
			return err
		}
	}
	return l.waitReady(ctx, node, 30*time.Second)
}

// CutQuorum drops (on) or restores (off) a node's quorum traffic in both
// directions: etcd: the node's connections to the etcd member; raft: the
// node's connections to every other voter and theirs to it.
func (l *Lab) CutQuorum(ctx context.Context, node string, on bool) error {
	h := l.net.Host(node)
	if h == nil {
		return fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	if l.meta.Quorum == "etcd" {
		return h.DropTCPTo(ctx, netip.AddrPortFrom(l.net.Host(QuorumHost).IPv4, EtcdPort), on)
	}
	for _, o := range l.voters() {
		if o == h {
			continue
		}
		for _, p := range []uint16{RaftPort, RaftCli} {
			if err := h.DropTCPTo(ctx, netip.AddrPortFrom(o.IPv4, p), on); err != nil {
				return err
			}
			if err := o.DropTCPTo(ctx, netip.AddrPortFrom(h.IPv4, p), on); err != nil {
				return err
			}
		}
	}
	return nil
}

// StopQuorum makes the whole quorum unavailable (on) or brings it back:
// etcd: the member is frozen (SIGSTOP); raft: the witness is frozen and the
// nodes are cut from each other.
func (l *Lab) StopQuorum(ctx context.Context, on bool) error {
	l.mu.Lock()
	rec := l.meta.QuorumPID
	l.mu.Unlock()
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if err := rec.Signal(sig); err != nil {
		return fmt.Errorf("labctl: quorum process: %w", err)
	}
	if l.meta.Quorum == "raft" {
		for _, n := range l.meta.Nodes {
			if err := l.CutQuorum(ctx, n, on); err != nil {
				return err
			}
		}
	}
	return nil
}

// Owners returns, per group (index 0 = group 1), the nodes whose daemon
// reports role owner.
func (l *Lab) Owners(ctx context.Context) ([][]string, error) {
	owners := make([][]string, l.meta.Groups)
	for _, n := range l.meta.Nodes {
		st, err := l.Status(ctx, n)
		if err != nil {
			return nil, err
		}
		for g, r := range st.Roles {
			if r == "owner" && g < len(owners) {
				owners[g] = append(owners[g], n)
			}
		}
	}
	return owners, nil
}

// WaitSteady waits until every daemon answers and every group has exactly
// one owner, stable for half a second.
func (l *Lab) WaitSteady(ctx context.Context, timeout time.Duration) error {
	return WaitStable(ctx, timeout, 50*time.Millisecond, func() (string, bool) { return l.steady(ctx) })
}

// WaitStable polls check every interval until it reports ok with the same
// description for half a second; after timeout the error (ErrNotReady)
// carries the last description.
func WaitStable(ctx context.Context, timeout, interval time.Duration, check func() (desc string, ok bool)) error {
	deadline := time.Now().Add(timeout)
	var stableSince time.Time
	var last string
	for {
		desc, ok := check()
		switch {
		case !ok:
			stableSince = time.Time{}
		case desc != last || stableSince.IsZero():
			stableSince = time.Now()
		case time.Since(stableSince) >= 500*time.Millisecond:
			return nil
		}
		last = desc
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not steady after %v: %s", ErrNotReady, timeout, desc)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(interval)
	}
}

func (l *Lab) steady(ctx context.Context) (string, bool) {
	var b strings.Builder
	ok := true
	for _, n := range l.meta.Nodes {
		st, _ := l.Status(ctx, n)
		switch {
		case !st.Running:
			fmt.Fprintf(&b, "%s down (no daemon: pid %d gone); ", n, st.PID)
			ok = false
		case !st.Up:
			fmt.Fprintf(&b, "%s down (pid %d runs, status API: %s); ", n, st.PID, st.Err)
			ok = false
		}
	}
	owners, err := l.Owners(ctx)
	if err != nil {
		return err.Error(), false
	}
	for g, o := range owners {
		fmt.Fprintf(&b, "group %d owners %v; ", g+1, o)
		if len(o) != 1 {
			ok = false
		}
	}
	return b.String(), ok
}

// LabStatus describes a lab for `leasehold lab status`.
type LabStatus struct {
	Meta   Meta                  `json:"meta"`
	Dir    string                `json:"dir"`
	Nodes  map[string]NodeStatus `json:"nodes"`
	Quorum bool                  `json:"quorum_running"`
	Owners [][]string            `json:"owners"`
}

// Describe reads every node's status.
func (l *Lab) Describe(ctx context.Context) LabStatus {
	m := l.Meta()
	s := LabStatus{Meta: m, Dir: l.dir, Nodes: map[string]NodeStatus{}, Quorum: m.QuorumPID.Alive()}
	for _, n := range m.Nodes {
		s.Nodes[n], _ = l.Status(ctx, n)
	}
	s.Owners, _ = l.Owners(ctx)
	return s
}

// Isolate cuts node off from everything, VRRP, clients, the quorum and
// MySQL replication, by taking its interface down (on) or up again: the
// lab's nodes have one link each.
func (l *Lab) Isolate(ctx context.Context, node string, on bool) error {
	h := l.net.Host(node)
	if h == nil {
		return fmt.Errorf("%w: %q", netlab.ErrNoHost, node)
	}
	if on {
		return h.LinkDown()
	}
	return h.LinkUp()
}
