package drill

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lab/labdaemon"
)

// ErrRefused is returned when a live drill will not run (unsupported
// scenario, no way to restore, no way to find the daemon).
var ErrRefused = errors.New("drill: live drill refused")

// LiveOptions configure Live.
type LiveOptions struct {
	Scenario string
	Config   string // the local node's leasehold.yaml
	Duration time.Duration
	Progress io.Writer
}

// liveScenarios are the drills Live can inject on a real node.
var liveScenarios = []string{"kill9", "freeze", "vrrp-partition", "quorum-partition"}

const liveTable = "leasehold_drill"

// Live injects a fault into the local node of a real cluster and observes
// from there: the local daemon's status (role, epoch), whether the VIP is
// configured locally (netlink), and an ARP probe (sender 0.0.0.0) for the
// VIP on its interface every 100 ms, counting the MACs that answer.
// freeze sends SIGCONT and the nft drops are removed when the drill ends,
// also when ctx is cancelled (SIGINT). kill9 runs only under systemd with
// Restart=on-failure or always, which restores the daemon.
// Not done: watching the lease at the quorum (the epochs come from the
// local status API), graceful/quorum-loss/link-flap/preempt (lab only).
func Live(ctx context.Context, o LiveOptions) (Result, error) {
	if !slices.Contains(liveScenarios, o.Scenario) {
		return Result{}, fmt.Errorf("%w: %q runs only in a lab; live drills: %v", ErrRefused, o.Scenario, liveScenarios)
	}
	cfg, err := config.Load(o.Config)
	if err != nil {
		return Result{}, err
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration(o.Scenario)
		if o.Scenario == "kill9" {
			o.Duration = 10 * time.Second
		}
	}
	if o.Duration > 60*time.Second {
		return Result{}, fmt.Errorf("%w: --duration %v: at most 60 s on a live node", ErrRefused, o.Duration)
	}
	var inst *config.Instance
	var instName string
	for n, in := range cfg.Instance {
		if inst == nil || n < instName {
			inst, instName = in, n
		}
	}
	if inst == nil || len(inst.VirtualIPAddress) == 0 {
		return Result{}, fmt.Errorf("%w: %s has no vrrp_instance with a VIP", ErrRefused, o.Config)
	}
	vip, err := netip.ParseAddr(strings.Split(strings.Fields(inst.VirtualIPAddress[0])[0], "/")[0])
	if err != nil || !vip.Is4() {
		return Result{}, fmt.Errorf("%w: first VIP of %s is not an IPv4 address", ErrRefused, instName)
	}
	sock, ok := strings.CutPrefix(cfg.Status.Listen, "unix:")
	if cfg.Status.Listen == "" {
		sock, ok = "/run/leasehold/leasehold.sock", true
	}
	if !ok {
		return Result{}, fmt.Errorf("%w: status.listen %q is not a unix socket: cannot find the daemon's PID", ErrRefused, cfg.Status.Listen)
	}
	d := labdaemon.Attach(sock)
	defer d.Close()
	pid, err := d.Client().PeerPID(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("%w: no daemon answering on %s: %v", ErrRefused, sock, err)
	}
	if o.Scenario == "kill9" {
		if err := underRestartingSystemd(pid); err != nil {
			return Result{}, fmt.Errorf("%w: kill9: %v; nothing would restart the daemon (run it under systemd with Restart=on-failure)", ErrRefused, err)
		}
	}
	node := cfg.Node.Name
	r := Result{Scenario: o.Scenario, Target: node, VIP: vip.String(), Nodes: []string{node}, Started: time.Now().UTC(), Duration: o.Duration.String()}
	obs := &liveObserver{d: d, iface: inst.Interface, vip: vip, start: time.Now()}
	octx, stopObs := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- obs.run(octx) }()
	progress := func(f string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(f, a...))
		}
	}
	sleep(ctx, time.Second)
	st, _ := d.Status()
	if len(st.Groups) > 0 && st.Groups[0].Role == "owner" {
		r.OldOwner = node
	}
	r.EpochBefore = map[string]uint64{}
	if len(st.Groups) > 0 {
		r.EpochBefore[node] = st.Groups[0].Epoch
	}
	r.Timeline.FaultUS = time.Since(obs.start).Microseconds()
	switch o.Scenario {
	case "freeze":
		r.Fault = fmt.Sprintf("SIGSTOP of the local daemon (pid %d) for %v, then SIGCONT", pid, o.Duration)
		progress("%s", r.Fault)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			stopObs()
			return r, err
		}
		func() {
			defer syscall.Kill(pid, syscall.SIGCONT) // also when interrupted
			sleep(ctx, o.Duration)
		}()
	case "kill9":
		r.Fault = fmt.Sprintf("kill -9 of the local daemon (pid %d); systemd restarts it", pid)
		progress("%s", r.Fault)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			stopObs()
			return r, err
		}
		sleep(ctx, o.Duration)
	case "vrrp-partition", "quorum-partition":
		script, desc, err := liveNFT(cfg, o.Scenario)
		if err != nil {
			stopObs()
			return r, err
		}
		r.Fault = fmt.Sprintf("%s for %v (nft table inet %s)", desc, o.Duration, liveTable)
		progress("%s", r.Fault)
		if err := nft(script); err != nil {
			nft(fmt.Sprintf("add table inet %[1]s\ndelete table inet %[1]s\n", liveTable))
			stopObs()
			return r, err
		}
		func() {
			defer func() {
				if err := nft(fmt.Sprintf("delete table inet %s\n", liveTable)); err != nil {
					r.Reasons = append(r.Reasons, "could not remove the drop: "+err.Error())
				}
			}()
			sleep(ctx, o.Duration)
		}()
	}
	r.Timeline.RestoreUS = time.Since(obs.start).Microseconds()
	progress("restored; observing 5 s more")
	sleep(ctx, 5*time.Second)
	stopObs()
	<-done
	st, _ = d.Status()
	r.EpochAfter = map[string]uint64{}
	if len(st.Groups) > 0 {
		r.EpochAfter[node] = st.Groups[0].Epoch
		if st.Groups[0].Role == "owner" {
			r.FinalOwner = node
		}
	}
	obs.fill(&r)
	if r.DualARPRounds > 0 {
		r.Reasons = append(r.Reasons, fmt.Sprintf("SPLIT BRAIN: %d ARP probe rounds answered by two MACs (or by another MAC while this node owned the VIP)", r.DualARPRounds))
	}
	if ctx.Err() != nil {
		r.Reasons = append(r.Reasons, "interrupted (the fault was removed)")
	}
	r.Notes = append(r.Notes, "live drill: observed from this node only; the lease is not watched at the quorum (epochs from the local status API)")
	r.Pass = len(r.Reasons) == 0
	r.Verdict = map[bool]string{true: "PASS", false: "FAIL"}[r.Pass]
	return r, nil
}

// liveNFT returns the nft script of a partition scenario.
func liveNFT(cfg *config.Config, scenario string) (script, desc string, err error) {
	head := fmt.Sprintf("add table inet %[1]s\ndelete table inet %[1]s\ntable inet %[1]s {\n", liveTable)
	if scenario == "vrrp-partition" {
		return head + "\tchain in { type filter hook input priority -300; policy accept; meta l4proto 112 counter drop; }\n" +
				"\tchain out { type filter hook output priority -300; policy accept; meta l4proto 112 counter drop; }\n}\n",
			"VRRP (IP proto 112) dropped in and out of this node", nil
	}
	var eps []string
	switch cfg.Quorum.Backend {
	case config.BackendEtcd:
		for _, e := range cfg.Quorum.Etcd.Endpoints {
			if i := strings.Index(e, "://"); i >= 0 {
				e = e[i+3:]
			}
			eps = append(eps, strings.TrimSuffix(e, "/"))
		}
	case config.BackendRaft:
		me := cfg.Quorum.Raft.ID
		if me == "" {
			me = cfg.Node.Name
		}
		for _, p := range cfg.Quorum.Raft.Peers {
			if p.ID != me {
				eps = append(eps, p.Addr, p.Client)
			}
		}
	default:
		return "", "", fmt.Errorf("%w: quorum backend %q has no quorum traffic to cut", ErrRefused, cfg.Quorum.Backend)
	}
	for _, e := range eps {
		if _, err := netip.ParseAddrPort(e); err != nil {
			return "", "", fmt.Errorf("%w: quorum endpoint %q is not IP:port (names are not resolved here)", ErrRefused, e)
		}
	}
	var in strings.Builder
	for _, e := range eps {
		ap, _ := netip.ParseAddrPort(e)
		fam := "ip"
		if ap.Addr().Is6() {
			fam = "ip6"
		}
		fmt.Fprintf(&in, "\t\t%s saddr %s meta l4proto tcp counter drop\n", fam, ap.Addr())
	}
	out := strings.Builder{}
	for _, e := range eps {
		ap, _ := netip.ParseAddrPort(e)
		fam := "ip"
		if ap.Addr().Is6() {
			fam = "ip6"
		}
		fmt.Fprintf(&out, "\t\t%s daddr %s meta l4proto tcp counter drop\n", fam, ap.Addr())
	}
	return head + "\tchain in {\n\t\ttype filter hook input priority -300; policy accept;\n" + in.String() + "\t}\n" +
			"\tchain out {\n\t\ttype filter hook output priority -300; policy accept;\n" + out.String() + "\t}\n}\n",
		fmt.Sprintf("TCP to and from the quorum hosts (%s) dropped", strings.Join(eps, ", ")), nil
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// underRestartingSystemd checks that pid runs in a systemd service whose
// Restart= would bring it back after kill -9.
func underRestartingSystemd(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	unit := ""
	for _, part := range strings.Split(strings.TrimSpace(string(b)), "/") {
		if strings.HasSuffix(part, ".service") {
			unit = part
		}
	}
	if unit == "" {
		return fmt.Errorf("the daemon (pid %d) does not run in a systemd service", pid)
	}
	out, err := exec.Command("systemctl", "show", "-p", "Restart", "--value", unit).Output()
	if err != nil {
		return fmt.Errorf("systemctl show %s: %v", unit, err)
	}
	switch v := strings.TrimSpace(string(out)); v {
	case "on-failure", "always", "on-abnormal", "on-abort":
		return nil
	default:
		return fmt.Errorf("%s has Restart=%s", unit, v)
	}
}

// liveObserver samples the local node every 100 ms.
type liveObserver struct {
	d     *labdaemon.Daemon
	iface string
	vip   netip.Addr
	start time.Time

	fence *fencing.NFT // read only: is the local VIP's fence open

	mu     sync.Mutex // the status poller and the ARP rounds both record
	rounds int
	dual   int
	vipOn  []Span
	arp    map[string][]Span
	status []Mark
}

func (o *liveObserver) run(ctx context.Context) error {
	o.arp = map[string][]Span{}
	ifi, err := net.InterfaceByName(o.iface)
	if err != nil {
		return err
	}
	conn, err := packet.Listen(ifi, packet.Raw, 0x0806, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer func() {
		if o.fence != nil {
			o.fence.Close()
		}
	}()
	// The daemon's status is polled on its own: while the daemon is frozen
	// a status call blocks, and the ARP rounds must go on.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { o.pollStatus(ctx) })
	frame := arpProbe(ifi.HardwareAddr, o.vip)
	bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		at := time.Since(o.start).Microseconds()
		next := time.Now().Add(100 * time.Millisecond)
		conn.WriteTo(frame, bcast)
		macs := map[string]bool{}
		dual := false
		for {
			conn.SetReadDeadline(next)
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				break
			}
			if mac, ok := arpReplyFor(buf[:n], o.vip, ifi.HardwareAddr); ok {
				macs[mac] = true
				// Our own replies never reach our probe: whether this node
				// answers too is read from its kernel at the instant the
				// other reply arrives (VIP configured and fence open), not
				// from the daemon's status, which lags or is absent while it
				// is frozen or just thawed.
				if !dual && hasAddr(o.vip) && o.fenceOpen() {
					dual = true
				}
			}
		}
		end := time.Since(o.start).Microseconds()
		o.mu.Lock()
		o.rounds++
		if hasAddr(o.vip) {
			o.vipOn = appendSpan(o.vipOn, at, end)
		}
		if len(macs) > 1 || dual {
			o.dual++
		}
		for mac := range macs {
			o.arp[mac] = appendSpan(o.arp[mac], at, end)
		}
		o.mu.Unlock()
	}
	return nil
}

// pollStatus records the daemon's role and epoch every 100 ms, stamped
// with the time the answer came (a frozen daemon answers late).
func (o *liveObserver) pollStatus(ctx context.Context) {
	var last Mark
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for first := true; ctx.Err() == nil; first = false {
		st, err := o.d.Status()
		m := Mark{At: time.Since(o.start).Microseconds(), Node: "local", Up: err == nil}
		if err == nil && len(st.Groups) > 0 {
			m.Role, m.Epoch = st.Groups[0].Role, st.Groups[0].Epoch
		}
		if first || m.Role != last.Role || m.Epoch != last.Epoch || m.Up != last.Up {
			o.mu.Lock()
			o.status = append(o.status, m)
			o.mu.Unlock()
			last = m
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// fenceOpen reports whether the local kernel lets the VIP answer: its
// element in leasehold's nftables fence is present and not expired. Without
// a readable fence (nftables unused) a configured VIP counts as answering.
func (o *liveObserver) fenceOpen() bool {
	if o.fence == nil {
		f, err := fencing.NewNFT("", nil)
		if err != nil {
			return true
		}
		o.fence = f
	}
	left, ok, err := o.fence.Armed(o.vip)
	if err != nil {
		return true
	}
	return ok && left > 0
}

func appendSpan(s []Span, from, to int64) []Span {
	if n := len(s); n > 0 && from-s[n-1].To < 150_000 {
		s[n-1].To = to
		return s
	}
	return append(s, Span{From: from, To: to})
}

func (o *liveObserver) fill(r *Result) {
	r.ARPRounds, r.DualARPRounds = o.rounds, o.dual
	r.DualARPUS = int64(o.dual) * 100_000
	r.Timeline.EndUS = time.Since(o.start).Microseconds()
	r.Timeline.VIP = map[string][]Span{r.Target: o.vipOn}
	r.Timeline.ARP = o.arp
	r.Timeline.Status = o.status
	r.OldOwnerLastARPUS = -1
	for mac := range o.arp {
		r.Nodes = append(r.Nodes, mac)
	}
}

func hasAddr(a netip.Addr) bool {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			return true
		}
	}
	return false
}

// arpProbe builds an RFC 5227 probe: who-has vip, sender 0.0.0.0.
func arpProbe(src net.HardwareAddr, vip netip.Addr) []byte {
	b := make([]byte, 42)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	binary.BigEndian.PutUint16(b[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[16:], 0x0800) // IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], 1) // request
	copy(b[22:28], src)
	// sender IP 0.0.0.0, target MAC zero
	t := vip.As4()
	copy(b[38:42], t[:])
	return b
}

// arpReplyFor returns the sender MAC of an ARP reply for vip to us.
func arpReplyFor(b []byte, vip netip.Addr, self net.HardwareAddr) (string, bool) {
	if len(b) < 42 || binary.BigEndian.Uint16(b[12:]) != 0x0806 || binary.BigEndian.Uint16(b[20:]) != 2 {
		return "", false
	}
	if ip, _ := netip.AddrFromSlice(b[28:32]); ip != vip {
		return "", false
	}
	mac := net.HardwareAddr(b[22:28])
	if mac.String() == self.String() {
		return "", false
	}
	return mac.String(), true
}
