package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// Host is one namespace of a lab, joined to the bridge by a veth pair.
type Host struct {
	lab *Lab

	// Name is the host's short name ("n1", "client", "sw").
	Name string
	// NS is the namespace name (iproute2: /run/netns/NS).
	NS string
	// Iface is the host's end of its veth pair (for the switch: the bridge).
	Iface string
	// IPv4 and IPv6 are the host's own addresses (zero for the switch).
	IPv4 netip.Addr
	IPv6 netip.Addr
	// MAC is Iface's hardware address.
	MAC net.HardwareAddr

	port    string // the switch's end of the veth pair
	nsPath  string
	ifindex int

	mu       sync.Mutex
	tcpTable bool
	tcpDrops map[netip.AddrPort]bool
}

// NSPath returns the namespace's bind mount, e.g. /run/netns/lh3f2a-n1.
func (h *Host) NSPath() string { return nsPath(h.NS) }

// Port returns the name of the switch-side end of the host's veth pair.
func (h *Host) Port() string { return h.port }

func (h *Host) String() string { return h.Name }

// Command returns a command that runs name inside the host's namespace
// (via `ip netns exec`, which execs the program in place, so the PID is
// the program's own). The caller starts and waits for it; prefer StartCmd
// so the lab records it for cleanup. The command carries Pdeathsig
// SIGKILL: do not Start it inside Do (the thread that forks it dies when
// Do returns, and the child with it); Run/Output inside Do are fine.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", h.NS, name}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs a command in the namespace and returns its combined output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: %s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Proc is a process started in a host's namespace and recorded in the
// lab's state file.
type Proc struct {
	PID  int
	Cmd  *exec.Cmd
	host *Host
	rec  ProcRecord
	done chan struct{}
	err  error
}

// Start starts name in the namespace, output discarded.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return h.StartCmd(h.Command(ctx, name, args...))
}

// StartCmd starts a command made by Command (set its Stdout/Stderr first)
// and records its PID in the lab's state file. The process gets SIGKILL if
// the calling program dies (Pdeathsig).
func (h *Host) StartCmd(cmd *exec.Cmd) (*Proc, error) {
	if !h.lab.isUp() {
		return nil, ErrNotUp
	}
	// Fork on the forker thread, which never exits: Pdeathsig fires when
	// the *thread* that forked exits, and any other thread may later be
	// locked by Do (or nstest) and destroyed, killing the child with it.
	if err := forkOnStableThread(cmd); err != nil {
		return nil, fmt.Errorf("netlab: %s: start %s: %w", h.Name, cmd.Path, err)
	}
	p := &Proc{PID: cmd.Process.Pid, Cmd: cmd, host: h, done: make(chan struct{})}
	argv0 := ""
	if len(cmd.Args) > 4 {
		argv0 = cmd.Args[4]
	}
	p.rec = recordOf(p.PID, h.Name, argv0)
	if err := h.lab.state.update(func(st *State) { st.Procs = append(st.Procs, p.rec) }); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	// `ip netns exec` switches namespace before exec'ing the program: wait
	// for that, so the PID returned is already in the namespace.
	for i := 0; i < 2000 && !inNetns(p.PID, h.nsPath); i++ {
		if procExited(p.PID) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() {
		p.err = cmd.Wait()
		h.lab.state.update(func(st *State) {
			for i, r := range st.Procs {
				if r == p.rec {
					st.Procs = append(st.Procs[:i], st.Procs[i+1:]...)
					break
				}
			}
		})
		close(p.done)
	}()
	return p, nil
}

// Signal sends sig to the process unless it has exited.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("netlab: pid %d: %w", p.PID, syscall.ESRCH)
	default:
	}
	if err := syscall.Kill(p.PID, sig); err != nil {
		return fmt.Errorf("netlab: kill -%d %d: %w", sig, p.PID, err)
	}
	return nil
}

// Kill sends sig (e.g. syscall.SIGKILL) to the process.
func (p *Proc) Kill(sig syscall.Signal) error { return p.Signal(sig) }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit or ctx to end.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do runs fn with the calling code on an OS thread inside the host's
// namespace (see package doc). Sockets fn opens stay in the namespace.
// fn runs on another goroutine: it must not call t.Fatal.
func (h *Host) Do(fn func() error) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	return doInNetns(h.nsPath, fn)
}

// checkPID refuses a pid that is not in the host's namespace.
func (h *Host) checkPID(pid int) error {
	if pid <= 0 || !inNetns(pid, h.nsPath) {
		return fmt.Errorf("%w: pid %d, host %s", ErrForeignPID, pid, h.Name)
	}
	return nil
}

// Freeze stops pid (SIGSTOP), which must run in the host's namespace.
func (h *Host) Freeze(pid int) error {
	if err := h.checkPID(pid); err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGSTOP)
}

// Thaw continues pid (SIGCONT), which must run in the host's namespace.
func (h *Host) Thaw(pid int) error {
	if err := h.checkPID(pid); err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}

// nft applies an nftables script inside the namespace.
func (h *Host) nft(ctx context.Context, script string) error {
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s: nft: %w: %s\n%s", h.Name, err, bytes.TrimSpace(out), script)
	}
	return nil
}

const vrrpTable = "netlab_vrrp"

// DropVRRP drops (on) or stops dropping (off) IP protocol 112 (VRRP) in
// and out of the host, IPv4 and IPv6, with an nftables table of its own
// at hook priority -300. Programs that send through AF_PACKET bypass it.
func (h *Host) DropVRRP(ctx context.Context, on bool) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	script := fmt.Sprintf("add table inet %[1]s\ndelete table inet %[1]s\n", vrrpTable)
	if on {
		script += fmt.Sprintf(`table inet %s {
	chain in { type filter hook input priority -300; policy accept; meta l4proto 112 counter drop; }
	chain out { type filter hook output priority -300; policy accept; meta l4proto 112 counter drop; }
}
`, vrrpTable)
	}
	return h.nft(ctx, script)
}

const tcpTable = "netlab_tcp"

// DropTCPTo drops (on) or stops dropping (off) TCP from the host to addr
// (destination address and port) and the replies from it.
func (h *Host) DropTCPTo(ctx context.Context, addr netip.AddrPort, on bool) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	var script strings.Builder
	if !h.tcpTable {
		fmt.Fprintf(&script, `add table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	set v4 { type ipv4_addr . inet_service; }
	set v6 { type ipv6_addr . inet_service; }
	chain out {
		type filter hook output priority -300; policy accept;
		ip daddr . tcp dport @v4 counter drop
		ip6 daddr . tcp dport @v6 counter drop
	}
	chain in {
		type filter hook input priority -300; policy accept;
		ip saddr . tcp sport @v4 counter drop
		ip6 saddr . tcp sport @v6 counter drop
	}
}
`, tcpTable)
	}
	set := "v4"
	if addr.Addr().Is6() {
		set = "v6"
	}
	if on && !h.tcpDrops[addr] {
		fmt.Fprintf(&script, "add element inet %s %s { %s . %d }\n", tcpTable, set, addr.Addr(), addr.Port())
	} else if !on && h.tcpDrops[addr] {
		fmt.Fprintf(&script, "delete element inet %s %s { %s . %d }\n", tcpTable, set, addr.Addr(), addr.Port())
	}
	if script.Len() == 0 {
		return nil
	}
	if err := h.nft(ctx, script.String()); err != nil {
		return err
	}
	h.tcpTable = true
	if h.tcpDrops == nil {
		h.tcpDrops = map[netip.AddrPort]bool{}
	}
	if on {
		h.tcpDrops[addr] = true
	} else {
		delete(h.tcpDrops, addr)
	}
	return nil
}

// setLink sets link name in the namespace at path up or down.
func setLink(path, name string, up bool) error {
	nh, ns, err := handleAt(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer nh.Close()
	lk, err := nh.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netlab: link %s: %w", name, err)
	}
	if up {
		err = nh.LinkSetUp(lk)
	} else {
		err = nh.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("netlab: set %s up=%v: %w", name, up, err)
	}
	return nil
}

// LinkDown sets the host's interface administratively down (the host sees
// its own link go away: routes vanish, keepalived enters FAULT).
func (h *Host) LinkDown() error { return h.link(false) }

// LinkUp sets the host's interface up again. Addresses stay configured
// across down/up; IPv6 addresses without IFA_F_PERMANENT may not.
func (h *Host) LinkUp() error { return h.link(true) }

func (h *Host) link(up bool) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	if h == h.lab.sw {
		return fmt.Errorf("%w: the switch has no link of its own", ErrNoHost)
	}
	return setLink(h.nsPath, h.Iface, up)
}

// Unplug sets the switch's end of the host's veth down: the host keeps its
// interface up but loses carrier, like a pulled cable.
func (h *Host) Unplug() error { return h.plug(false) }

// Plug undoes Unplug.
func (h *Host) Plug() error { return h.plug(true) }

func (h *Host) plug(up bool) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	if h == h.lab.sw {
		return fmt.Errorf("%w: the switch has no link of its own", ErrNoHost)
	}
	return setLink(h.lab.sw.nsPath, h.port, up)
}

// AddAddr adds a (e.g. a VIP with its prefix length) to the host's
// interface, IPv6 with nodad. For tests of the checkers; daemons under test
// add VIPs themselves.
func (h *Host) AddAddr(a netip.Prefix) error { return h.addr(a, true) }

// DelAddr removes a from the host's interface.
func (h *Host) DelAddr(a netip.Prefix) error { return h.addr(a, false) }

func (h *Host) addr(a netip.Prefix, add bool) error {
	if !h.lab.isUp() {
		return ErrNotUp
	}
	nh, ns, err := handleAt(h.nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer nh.Close()
	lk, err := nh.LinkByName(h.Iface)
	if err != nil {
		return fmt.Errorf("netlab: link %s: %w", h.Iface, err)
	}
	na := &netlink.Addr{IPNet: prefixToIPNet(a)}
	if a.Addr().Is6() {
		na.Flags = 0x02 // IFA_F_NODAD
	}
	if add {
		err = nh.AddrAdd(lk, na)
	} else {
		err = nh.AddrDel(lk, na)
	}
	if err != nil {
		return fmt.Errorf("netlab: %s: addr %s add=%v: %w", h.Name, a, add, err)
	}
	return nil
}

// HasAddr reports whether a is configured on any interface of the host.
func (h *Host) HasAddr(a netip.Addr) (bool, error) {
	nh, ns, err := handleAt(h.nsPath)
	if err != nil {
		return false, err
	}
	defer ns.Close()
	defer nh.Close()
	addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("netlab: %s: list addresses: %w", h.Name, err)
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Unmap() {
			return true, nil
		}
	}
	return false, nil
}

// forkRequests are served by one goroutine locked to its thread for the
// life of the process, so children started with Pdeathsig die only with
// the process, not with a recycled thread.
var forkRequests = func() chan forkRequest {
	ch := make(chan forkRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for r := range ch {
			r.done <- r.cmd.Start()
		}
	}()
	return ch
}()

type forkRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func forkOnStableThread(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	forkRequests <- forkRequest{cmd: cmd, done: done}
	return <-done
}
