package vmlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/wire"
)

// Lab is a drill target with every optional fault.
var (
	_ drill.Target         = (*Lab)(nil)
	_ drill.CheckerSource  = (*Lab)(nil)
	_ drill.ProcessView    = (*Lab)(nil)
	_ drill.LinkSetter     = (*Lab)(nil)
	_ drill.VRRPLinkCutter = (*Lab)(nil)
	_ drill.Isolator       = (*Lab)(nil)
	_ drill.PowerCutter    = (*Lab)(nil)
	_ drill.Resetter       = (*Lab)(nil)
)

// statusTimeout bounds one status read through the agent: a frozen
// daemon must not stall the drill's 100 ms poll for long.
const statusTimeout = 500 * time.Millisecond

// Name says what the lab is, for reports.
func (l *Lab) Name() string {
	return fmt.Sprintf("vm lab (%d VMs, etcd, %s)", len(l.nodes), filepath.Base(l.o.Dir))
}

// Nodes returns the nodes, highest priority first.
func (l *Lab) Nodes() []string {
	var out []string
	for _, n := range l.nodes {
		out = append(out, n.name)
	}
	return out
}

// TTL is the daemons' lease TTL.
func (l *Lab) TTL() time.Duration { return l.o.TTL }

// VIP is the address the checkers watch.
func (l *Lab) VIP() netip.Addr { return vip }

// ProbePort is the port the client probes.
func (l *Lab) ProbePort() uint16 { return ProbePort }

// LogPath is a node's daemon log (on the host, through the share).
func (l *Lab) LogPath(node string) string {
	return filepath.Join(l.o.Dir, node, "share", filepath.Base(guestLog))
}

func (l *Lab) node(name string) (*node, error) {
	for _, n := range l.nodes {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("vmlab: no node %q", name)
}

// Checkers are an ARP prober and a TCP client on the host's end of the
// segment. There is no view of the guests' addresses (Addr nil).
func (l *Lab) Checkers() (drill.Checkers, error) {
	names := map[string]string{}
	for _, n := range l.nodes {
		names[n.mac] = n.name
	}
	arp := wire.NewARPProber(l.tb, l.seg, vip, names)
	tcp := wire.NewTCPProber(l.tb, l.seg, clientNet, netip.AddrPortFrom(vip, ProbePort), names)
	return drill.Checkers{Timebase: l.tb, ARP: arp, ARPInterval: arp.Interval, Client: tcp, ClientInterval: tcp.Interval,
		Run: []drill.Checker{arp, tcp}}, nil
}

// Status reads a node's daemon through its VM's agent.
func (l *Lab) Status(ctx context.Context, name string) (labctl.NodeStatus, error) {
	n, err := l.node(name)
	if err != nil {
		return labctl.NodeStatus{}, err
	}
	l.mu.Lock()
	v, p := n.vm, n.daemon
	l.mu.Unlock()
	ns := labctl.NodeStatus{PID: p.PID, StartTime: p.StartTime}
	if v == nil || p.PID == 0 || exited(v) {
		return ns, nil
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	code, body, herr := v.HTTP(cctx, statusSocket, "GET", "/status", nil)
	if herr == nil && code == 200 {
		var st labdaemon.Status
		if err := json.Unmarshal(body, &st); err != nil {
			ns.Running, ns.Err = true, err.Error()
			return ns, nil
		}
		ns.Running, ns.Up = true, true
		for i, g := range st.Groups {
			if i == 0 {
				ns.Role, ns.Epoch = g.Role, g.Epoch
			}
			ns.Roles = append(ns.Roles, g.Role)
		}
		return ns, nil
	}
	if herr == nil {
		herr = fmt.Errorf("GET /status: HTTP %d: %.200s", code, body)
	}
	ns.Err = herr.Error()
	actx, cancel2 := context.WithTimeout(ctx, statusTimeout)
	defer cancel2()
	alive, aerr := v.Alive(actx, p)
	// An agent that cannot answer (the guest is busy or resetting) says
	// nothing about the daemon: keep it running, not up.
	ns.Running = alive || aerr != nil
	return ns, nil
}

func exited(v *vm.VM) bool {
	select {
	case <-v.Exited():
		return true
	default:
		return false
	}
}

// ProcessAlive reports whether the daemon process still runs in node's VM.
func (l *Lab) ProcessAlive(ctx context.Context, name string, pid int, start uint64) bool {
	n, err := l.node(name)
	if err != nil {
		return false
	}
	v := l.vmOf(n)
	if v == nil || exited(v) {
		return false
	}
	alive, err := v.Alive(ctx, vm.Proc{PID: pid, StartTime: start})
	return alive || err != nil
}

// Signal signals a node's daemon.
func (l *Lab) Signal(name string, sig syscall.Signal) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	v, p := n.vm, n.daemon
	l.mu.Unlock()
	if v == nil || exited(v) {
		return fmt.Errorf("vmlab: %s's VM is not running", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v.Signal(ctx, p, sig)
}

// Restart boots a node's VM again if it ended (reset, power cut) and
// starts its daemon if it is not running, then waits until the daemon's
// status API answers.
func (l *Lab) Restart(ctx context.Context, name string) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	v := l.vmOf(n)
	switch {
	case v == nil || exited(v):
		if err := l.boot(ctx, n); err != nil {
			return err
		}
		if err := l.startDaemon(ctx, n); err != nil {
			return err
		}
	case l.o.Keepalived:
		l.mu.Lock()
		p := n.daemon
		l.mu.Unlock()
		if alive, err := v.Alive(ctx, p); err != nil || !alive {
			return l.startDaemon(ctx, n)
		}
	default:
		if st, _ := l.Status(ctx, name); !st.Running {
			if err := l.startDaemon(ctx, n); err != nil {
				return err
			}
		}
	}
	if l.o.Keepalived {
		return nil // no status API: the caller waits for DRBD (waitSteadyDRBD)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := l.Status(ctx, name)
		if st.Up {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("vmlab: %s's daemon does not answer 30 s after its start: %s (log %s)", name, st.Err, l.LogPath(name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setLink sets one of node's links (NIC "l2" or "quorum") up or down.
func (l *Lab) setLink(ctx context.Context, name, nic string, up bool) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	v := l.vmOf(n)
	if v == nil || exited(v) {
		if up {
			return nil // a VM booted again has its links up
		}
		return fmt.Errorf("vmlab: %s's VM is not running", name)
	}
	return v.SetLink(ctx, nic, up)
}

// CutQuorum cuts a node's quorum link (on) or restores it.
func (l *Lab) CutQuorum(ctx context.Context, name string, on bool) error {
	return l.setLink(ctx, name, "quorum", !on)
}

// StopQuorum freezes the etcd server (on) or continues it.
func (l *Lab) StopQuorum(_ context.Context, on bool) error {
	if on {
		return l.etcd.Process.Signal(syscall.SIGSTOP)
	}
	return l.etcd.Process.Signal(syscall.SIGCONT)
}

// SetLink takes node's VRRP and client link down or up (link-flap).
func (l *Lab) SetLink(ctx context.Context, name string, up bool) error {
	return l.setLink(ctx, name, "l2", up)
}

// CutVRRPLink cuts node's VRRP and client link, leaving its quorum link.
func (l *Lab) CutVRRPLink(ctx context.Context, name string, on bool) error {
	return l.setLink(ctx, name, "l2", !on)
}

// Isolate cuts both of node's links.
func (l *Lab) Isolate(ctx context.Context, name string, on bool) error {
	if err := l.setLink(ctx, name, "l2", !on); err != nil {
		return err
	}
	return l.setLink(ctx, name, "quorum", !on)
}

// PowerCut ends node's qemu at once (QMP quit: no shutdown, no flush).
func (l *Lab) PowerCut(_ context.Context, name string) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	v := n.vm
	n.cutting = true
	l.mu.Unlock()
	if v == nil {
		return fmt.Errorf("vmlab: %s's VM is not running", name)
	}
	return v.PowerCut()
}

// WatchdogArmed: the daemons arm softdog while they own (unless the lab
// runs with the watchdog off).
func (l *Lab) WatchdogArmed() bool { return l.o.Watchdog != "off" }

// ResetAt is when node's VM last ended by itself (zero: never).
func (l *Lab) ResetAt(name string) time.Time {
	n, err := l.node(name)
	if err != nil {
		return time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.resetAt
}

// WaitSteady waits until every daemon answers and exactly one reports
// role owner, stable for half a second.
func (l *Lab) WaitSteady(ctx context.Context, timeout time.Duration) error {
	return labctl.WaitStable(ctx, timeout, 100*time.Millisecond, func() (string, bool) {
		var b strings.Builder
		owners, up := 0, true
		for _, n := range l.nodes {
			st, _ := l.Status(ctx, n.name)
			fmt.Fprintf(&b, "%s: running %v, up %v, role %q; ", n.name, st.Running, st.Up, st.Role)
			up = up && st.Up
			if st.Role == "owner" {
				owners++
			}
		}
		return b.String(), up && owners == 1
	})
}
