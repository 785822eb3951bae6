package interop

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"github.com/leasehold/leasehold/test/keepalivedtest"
	"github.com/leasehold/leasehold/test/lhtest"
)

const probePort = 8080

// pair describes one interop run: keepalived on host "ka", leasehold on "lh".
type pair struct {
	version  int
	interval time.Duration
	ipv6     bool
	unicast  bool
	authPass string // VRRPv2 PASS, both sides
	// lhMaster: leasehold is the master (prio 120) and keepalived backs up.
	lhMaster bool
	vrid     uint8
}

// world is a lab with keepalived and leasehold and the invariant checkers.
type world struct {
	t    *testing.T
	p    pair
	lab  *netlab.Lab
	ka   *netlab.Host
	lh   *netlab.Host
	x    *netlab.Host // a third host for spoofed packets
	vip  netip.Addr
	mon  *netlab.AddrMonitor
	arp  *netlab.ARPProber
	tcp  *netlab.TCPProber
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	kad *keepalivedtest.Keepalived
	lhd *labdaemon.Daemon
}

func newWorld(t *testing.T, p pair) *world {
	t.Helper()
	lab := netlabtest.NewForTest(t, netlab.Options{Hosts: []string{"ka", "lh", "x"}, Client: true}, "/usr/sbin/keepalived")
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{t: t, p: p, lab: lab, ka: lab.Host("ka"), lh: lab.Host("lh"), x: lab.Host("x"), ctx: ctx, stop: cancel}
	w.vip = lab.VIP4()
	if p.ipv6 {
		w.vip = lab.VIP6()
	}
	w.mon = netlab.NewAddrMonitor(lab.Timebase(), w.vip, w.ka, w.lh)
	w.goRun(w.mon.Run)
	<-w.mon.Ready()
	if !p.ipv6 {
		w.arp = netlab.NewARPProber(lab, w.vip)
		w.goRun(w.arp.Run)
		<-w.arp.Ready()
	}
	for _, h := range []*netlab.Host{w.ka, w.lh} {
		r := netlab.NewResponder(h, probePort)
		w.goRun(r.Run)
		<-r.Ready()
	}
	w.tcp = netlab.NewTCPProber(lab.Timebase(), lab.Host(netlab.ClientName), netip.AddrPortFrom(w.vip, probePort))
	w.goRun(w.tcp.Run)
	<-w.tcp.Ready()
	t.Cleanup(w.close)
	return w
}

func (w *world) goRun(f func(context.Context) error) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := f(w.ctx); err != nil && w.ctx.Err() == nil {
			w.t.Errorf("checker: %v", err)
		}
	}()
}

func (w *world) close() {
	if w.kad != nil {
		w.kad.Kill9()
	}
	if w.lhd != nil {
		w.lhd.Kill9()
	}
	w.stop()
	w.wg.Wait()
	if w.t.Failed() {
		if w.kad != nil {
			w.t.Logf("keepalived log:\n%s", tail(w.kad.Log(), 40))
		}
		if w.lhd != nil {
			w.t.Logf("leasehold log:\n%s", w.lhd.Tail(40))
		}
		w.t.Logf("address events: %+v", w.mon.Events())
	}
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (w *world) prio(lh bool) uint8 {
	if lh == w.p.lhMaster {
		return 120
	}
	return 100
}

func (w *world) addr(h *netlab.Host) netip.Addr {
	if w.p.ipv6 {
		return h.IPv6
	}
	return h.IPv4
}

func (w *world) vipPrefix() netip.Prefix {
	if w.p.ipv6 {
		return netip.PrefixFrom(w.vip, 64)
	}
	return netip.PrefixFrom(w.vip, 24)
}

// startKeepalived runs keepalived on host ka.
func (w *world) startKeepalived() {
	w.t.Helper()
	in := keepalivedtest.Instance{
		Name: "VI_1", State: "BACKUP", Interface: w.ka.Iface, VRID: w.p.vrid, Priority: w.prio(false),
		AdvertInt: w.p.interval, Version: w.p.version, AuthPass: w.p.authPass,
		VIPs: []netip.Prefix{w.vipPrefix()},
	}
	if !w.p.lhMaster {
		in.State = "MASTER"
	}
	if w.p.unicast {
		in.UnicastSrc, in.UnicastPeers = w.addr(w.ka), []netip.Addr{w.addr(w.lh)}
	}
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	k, err := keepalivedtest.Run(ctx, w.ka, keepalivedtest.Config{Instances: []keepalivedtest.Instance{in}})
	if err != nil {
		w.t.Fatalf("keepalived: %v", err)
	}
	w.kad = k
}

// startLeasehold runs leasehold on host lh.
func (w *world) startLeasehold() {
	w.t.Helper()
	dir := w.t.TempDir()
	state := "BACKUP"
	if w.p.lhMaster {
		state = "MASTER"
	}
	var b strings.Builder
	b.WriteString("node: {name: lh}\nquorum: {backend: none}\nstatus: {listen: \"unix:%SOCK%\"}\nstate_dir: %DIR%/state\n")
	fmt.Fprintf(&b, "vrrp_instance:\n  VI_1:\n    state: %s\n    interface: %s\n    virtual_router_id: %d\n    priority: %d\n    version: %d\n    advert_int: %s\n    garp_master_delay: 1\n",
		state, w.lh.Iface, w.p.vrid, w.prio(true), w.p.version, w.p.interval)
	fmt.Fprintf(&b, "    virtual_ipaddress: [\"%s\"]\n", w.vipPrefix())
	if w.p.authPass != "" {
		fmt.Fprintf(&b, "    authentication: {auth_type: PASS, auth_pass: %q}\n", w.p.authPass)
	}
	if w.p.unicast {
		fmt.Fprintf(&b, "    unicast_src_ip: %s\n    unicast_peer: [\"%s\"]\n", w.addr(w.lh), w.addr(w.ka))
	}
	bin, err := lhtest.Binary()
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := labdaemon.Start(w.ctx, bin, w.lh, dir, b.String())
	if err != nil {
		w.t.Fatalf("leasehold: %v", err)
	}
	w.lhd = d
	if err := d.WaitReady(10 * time.Second); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) lhState() string {
	s, err := w.lhd.Status()
	if err != nil || len(s.Instances) != 1 {
		w.t.Fatalf("leasehold status: %+v, %v", s, err)
	}
	return s.Instances[0].State
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
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

// holders names the hosts that have the VIP configured now.
func (w *world) holders() []string { return w.mon.Holders(w.lab.Timebase().Now()) }

func (w *world) holds(name string) bool {
	for _, h := range w.holders() {
		if h == name {
			return true
		}
	}
	return false
}

// addedAt returns when host got the VIP after from (zero if not).
func (w *world) addedAt(host string, from netlab.Stamp) netlab.Stamp {
	for _, e := range w.mon.Events() {
		if e.Host == host && e.Added && !e.At.Before(from) {
			return e.At
		}
	}
	return netlab.Stamp{}
}

// removedAt returns when host lost the VIP after from (zero if not).
func (w *world) removedAt(host string, from netlab.Stamp) netlab.Stamp {
	for _, e := range w.mon.Events() {
		if e.Host == host && !e.Added && !e.At.Before(from) {
			return e.At
		}
	}
	return netlab.Stamp{}
}

// arpAnswerers returns the hosts that answered the ARP probe in rounds
// after from.
func (w *world) arpAnswerers(from netlab.Stamp) map[string]int {
	out := map[string]int{}
	for _, r := range w.arp.Rounds() {
		if r.At.Before(from) {
			continue
		}
		for _, h := range r.Hosts {
			out[h]++
		}
	}
	return out
}

// lastTCPAnswer returns the node that answered the last successful TCP
// probe after from.
func (w *world) lastTCPAnswer(from netlab.Stamp) string {
	last := ""
	for _, s := range w.tcp.Samples() {
		if s.OK() && !s.At.Before(from) {
			last = s.Node
		}
	}
	return last
}
