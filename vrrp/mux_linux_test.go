package vrrp_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/test/nstest"
	"github.com/leasehold/leasehold/vrrp"
)

// recorder is an Effects that reports Up and Down per VRID on channels.
type recorder struct {
	vrid     uint8
	up, down chan uint8
}

func (r *recorder) Up(context.Context) error   { r.up <- r.vrid; return nil }
func (r *recorder) Down(context.Context) error { r.down <- r.vrid; return nil }

// node is one side: a Conn, its Mux and instances for a set of VRIDs.
type node struct {
	mux      *vrrp.Mux
	insts    []*vrrp.Instance
	up, down chan uint8
}

func newNode(t *testing.T, ifname string, src netip.Addr, prio uint8, state vrrp.State, vrids []uint8, log *slog.Logger) *node {
	t.Helper()
	c, err := vrrp.Listen(ifname, src.Is6(), vrrp.ConnOptions{Multicast: true, Src: src})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{mux: vrrp.NewMux(c, log), up: make(chan uint8, 1024), down: make(chan uint8, 1024)}
	for _, id := range vrids {
		vip := netip.AddrFrom4([4]byte{10, 8, 1, id})
		if src.Is6() {
			vip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: id})
		}
		cfg := vrrp.InstanceConfig{
			Name: "VI", Iface: ifname,
			Machine: vrrp.Config{VRID: id, Priority: prio, Version: 3, AdvertInterval: 50 * time.Millisecond,
				Preempt: true, InitialState: state},
			Expect: vrrp.Expect{Version: 3, VRID: id, Interval: 50 * time.Millisecond, CheckTTL: true},
			VIPs:   []netip.Addr{vip},
		}
		in, err := vrrp.NewInstance(cfg, c, nil, &recorder{vrid: id, up: n.up, down: n.down}, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.mux.Add(in); err != nil {
			t.Fatal(err)
		}
		n.insts = append(n.insts, in)
	}
	return n
}

// start runs the Mux and the instances; stopInstances shuts the instances
// down (priority 0, Down) and waits; stop then ends the Mux.
func (n *node) start() (stopInstances, stop func()) {
	mctx, mcancel := context.WithCancel(context.Background())
	ictx, icancel := context.WithCancel(context.Background())
	var mwg, iwg sync.WaitGroup
	mwg.Go(func() { n.mux.Run(mctx) })
	for _, in := range n.insts {
		iwg.Go(func() { in.Run(ictx, 2*time.Second) })
	}
	stopInstances = sync.OnceFunc(func() { icancel(); iwg.Wait() })
	return stopInstances, func() { stopInstances(); mcancel(); mwg.Wait() }
}

// collect waits until every VRID in want came on ch.
func collect(t *testing.T, what string, ch chan uint8, want []uint8, timeout time.Duration) {
	t.Helper()
	left := map[uint8]bool{}
	for _, id := range want {
		left[id] = true
	}
	deadline := time.After(timeout)
	for len(left) > 0 {
		select {
		case id := <-ch:
			delete(left, id)
		case <-deadline:
			t.Fatalf("%s: %d of %d VRIDs missing after %v", what, len(left), len(want), timeout)
		}
	}
}

// failover runs many instances on each end of a veth pair: all of one side
// (srcA) master, the other (srcB) backup. The backups must hear every
// master's adverts (TTL/hop limit 255 checked) and stay backup; when the
// masters shut down (priority 0), every backup takes over.
func failover(t *testing.T, ifA, ifB string, srcA, srcB netip.Addr) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var vrids []uint8
	for id := uint8(1); id <= 40; id++ {
		vrids = append(vrids, id)
	}
	a := newNode(t, ifA, srcA, 200, vrrp.StateMaster, vrids, log)
	b := newNode(t, ifB, srcB, 100, vrrp.StateBackup, vrids, log)
	stopA, stopAll := a.start()
	defer stopAll()
	_, stopB := b.start()
	defer stopB()

	collect(t, "A up", a.up, vrids, 5*time.Second)
	// B's master-down interval is 3×50 ms + skew: over a second without
	// A's adverts reaching it, B would take over.
	select {
	case id := <-b.up:
		t.Fatalf("backup VRID %d became master while the master advertises", id)
	case <-time.After(time.Second):
	}
	for _, in := range b.insts {
		s := in.Status()
		if s.State != "backup" || s.Master != srcA.String() || s.MasterPrio != 200 || s.AdvertsRecv == 0 {
			t.Errorf("backup %d: state %s master %s/%d received %d drops %v", s.VRID, s.State, s.Master,
				s.MasterPrio, s.AdvertsRecv, s.Drops)
		}
	}
	for _, in := range a.insts {
		if s := in.Status(); s.State != "master" || s.AdvertsSent < 5 || s.LastError != "" {
			t.Errorf("master %d: state %s sent %d error %q", s.VRID, s.State, s.AdvertsSent, s.LastError)
		}
	}

	stopA()
	collect(t, "A down", a.down, vrids, 5*time.Second)
	collect(t, "B up after A's priority-0 adverts", b.up, vrids, 5*time.Second)
	for _, in := range b.insts {
		if s := in.Status(); s.State != "master" {
			t.Errorf("backup %d did not take over: %s", s.VRID, s.State)
		}
	}
}

func TestMuxFailoverKernel(t *testing.T) {
	nstest.Run(t, func() {
		nstest.Pair(t, "vm0", "10.8.0.1/24", "10.8.0.2/24")
		failover(t, "vm0", "vm0p", netip.MustParseAddr("10.8.0.1"), netip.MustParseAddr("10.8.0.2"))
	})
}

func TestMuxFailoverIPv6Kernel(t *testing.T) {
	_, err := os.Stat("/proc/sys/net/ipv6")
	nstest.Require(t, err == nil, "kernel without IPv6")
	nstest.Run(t, func() {
		link := nstest.Link(t, "vm6")
		peer, err := netlink.LinkByName("vm6p")
		if link == nil || err != nil {
			t.Fatalf("links: %v", err)
		}
		srcA, srcB := netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")
		for l, a := range map[netlink.Link]netip.Addr{link: srcA, peer: srcB} {
			na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
			if err := netlink.AddrAdd(l, na); err != nil {
				t.Fatal(err)
			}
		}
		failover(t, "vm6", "vm6p", srcA, srcB)
	})
}

func TestInstanceRunNeedsMux(t *testing.T) {
	nstest.Run(t, func() {
		if nstest.Link(t, "vn0", "10.7.0.1/24") == nil {
			t.Fatal("no link")
		}
		c, err := vrrp.Listen("vn0", false, vrrp.ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		in, err := vrrp.NewInstance(vrrp.InstanceConfig{Name: "x", Machine: vrrp.Config{VRID: 1, Priority: 100,
			Version: 3, AdvertInterval: time.Second}}, c, nil, &recorder{}, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Run(context.Background(), time.Second); err == nil {
			t.Fatal("Run without a Mux returned nil")
		}
		x := vrrp.NewMux(c, log)
		if err := x.Add(in); err != nil {
			t.Fatal(err)
		}
		if err := vrrp.NewMux(c, log).Add(in); err == nil {
			t.Error("an instance added to a second Mux")
		}
	})
}
