package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"

	"github.com/leasehold/leasehold/test/nstest"
)

// wireCounts counts, on the far end of a veth pair, what a node puts on
// the wire: gratuitous ARPs for the VIP and adverts with a non-zero
// priority.
type wireCounts struct{ garps, adverts atomic.Int64 }

// gateLab is one node (a lease-gated instance with a real Mux, Conn and
// Announcer on gw0) and an observer on gw0p counting its frames. Call in
// the namespace; stop ends everything.
type gateLab struct {
	in   *Instance
	gate *fakeGate
	wire wireCounts
	stop func()
}

func newGateLab(t *testing.T, cfg InstanceConfig) *gateLab {
	t.Helper()
	nstest.Pair(t, "gw0", "10.8.0.1/24", "10.8.0.2/24")
	src, vip := netip.MustParseAddr("10.8.0.1"), netip.MustParseAddr("10.8.0.100")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lab := &gateLab{gate: &fakeGate{}}

	// The observer on gw0p.
	pifi, err := net.InterfaceByName("gw0p")
	if err != nil {
		t.Fatal(err)
	}
	arpc, err := arp.Dial(pifi)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := Listen("gw0p", false, ConnOptions{Multicast: true, Src: netip.MustParseAddr("10.8.0.2")})
	if err != nil {
		arpc.Close()
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			p, _, err := arpc.Read()
			if err != nil {
				return
			}
			if p.SenderIP == vip && p.TargetIP == vip {
				lab.wire.garps.Add(1)
			}
		}
	})
	readers.Go(func() {
		b := make([]byte, 1500)
		var a Advert
		for {
			n, meta, err := obs.ReadFrom(b)
			if err != nil {
				return
			}
			if Decode(b[:n], meta.Src, meta.Dst, &a) == DropNone && meta.Src == src && a.Priority != 0 {
				lab.wire.adverts.Add(1)
			}
		}
	})

	// The node on gw0.
	conn, err := Listen("gw0", false, ConnOptions{Multicast: true, Src: src})
	if err != nil {
		t.Fatal(err)
	}
	ann, err := NewAnnouncer("gw0", []netip.Addr{vip})
	if err != nil {
		t.Fatal(err)
	}
	mux := NewMux(conn, log)
	cfg.Name, cfg.Iface, cfg.LeaseGated, cfg.VIPs = "VI_1", "gw0", true, []netip.Addr{vip}
	cfg.Machine = Config{VRID: 51, Priority: 120, Version: 3, AdvertInterval: 50 * time.Millisecond, Preempt: true,
		InitialState: StateMaster}
	cfg.Expect = Expect{Version: 3, VRID: 51, Interval: 50 * time.Millisecond, CheckTTL: true}
	in, err := NewInstance(cfg, conn, ann, noEffects{}, log)
	if err != nil {
		t.Fatal(err)
	}
	lab.in = in
	live := time.Now().Add(time.Hour)
	lab.gate.set(live, live)
	in.SetGate(lab.gate)
	if err := mux.Add(in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { mux.Run(ctx) })
	run.Go(func() { in.Run(ctx, time.Second) })
	lab.stop = func() {
		cancel()
		run.Wait()
		ann.Close()
		arpc.Close()
		obs.Close()
		readers.Wait()
	}
	return lab
}

// waitFor polls cond for up to 5 s.
func (lab *gateLab) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after 5s (wire: %d garps, %d adverts; status %+v)", what,
				lab.wire.garps.Load(), lab.wire.adverts.Load(), lab.in.Status())
		}
	}
}

// TestGateOnTheWireKernel counts the frames of a lease-gated instance on
// the far end of a veth pair: while owner it advertises and announces;
// resumed past its deadline it sends neither a non-zero advert nor a
// gratuitous ARP; with a live session but not owner it advertises and
// still sends no gratuitous ARP.
func TestGateOnTheWireKernel(t *testing.T) {
	nstest.Run(t, func() {
		lab := newGateLab(t, InstanceConfig{GarpRepeat: 2, GarpDelay: 200 * time.Millisecond, GarpRefresh: 200 * time.Millisecond})
		defer lab.stop()
		in, gate, wire := lab.in, lab.gate, &lab.wire
		lab.waitFor(t, "master", func() bool { return in.Status().State == "master" })
		in.Announce() // the node became owner
		lab.waitFor(t, "owner's announcements and adverts", func() bool { return wire.garps.Load() >= 4 && wire.adverts.Load() >= 4 })

		// Resumed past the deadline: neither adverts nor announcements.
		gate.set(time.Now(), time.Now())
		time.Sleep(100 * time.Millisecond) // frames in flight
		g0, a0 := wire.garps.Load(), wire.adverts.Load()
		time.Sleep(time.Second)
		if g, a := wire.garps.Load()-g0, wire.adverts.Load()-a0; g != 0 || a != 0 {
			t.Errorf("past the deadline: %d gratuitous ARPs and %d non-zero adverts on the wire, want 0 and 0", g, a)
		}
		st := in.Status()
		if st.GARPsWithheld == 0 || st.AdvertsWithheld < 10 || st.State != "master" {
			t.Errorf("status %+v: want GARPs and adverts withheld while VRRP still says master", st)
		}

		// A new session, but not the owner: adverts, no gratuitous ARP (the
		// schedule ended; a new owner term would start one).
		gate.set(time.Now().Add(time.Hour), time.Time{})
		in.Announce()
		time.Sleep(500 * time.Millisecond)
		if g, a := wire.garps.Load()-g0, wire.adverts.Load()-a0; g != 0 || a < 5 {
			t.Errorf("live session, not owner: %d gratuitous ARPs (want 0), %d adverts (want ~10)", g, a)
		}
	})
}

// TestGARPAfterLinkFlapKernel: the owner announces while its link is down
// (sendto: network is down). With garp_master_delay 0 nothing else would
// ever announce the VIP; the retry does once the link is back.
func TestGARPAfterLinkFlapKernel(t *testing.T) {
	nstest.Run(t, func() {
		lab := newGateLab(t, InstanceConfig{GarpRepeat: 3})
		defer lab.stop()
		in, wire := lab.in, &lab.wire
		lab.waitFor(t, "master", func() bool { return in.Status().State == "master" })
		link, err := netlink.LinkByName("gw0")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetDown(link); err != nil {
			t.Fatal(err)
		}
		in.Announce()
		time.Sleep(100 * time.Millisecond)
		if st := in.Status(); st.GARPFailures == 0 || st.GARPsSent != 0 {
			t.Fatalf("link down: status %+v, want failures and nothing sent", st)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
		lab.waitFor(t, "the whole burst after the link came back", func() bool {
			return wire.garps.Load() == 3 && in.Status().GARPsSent == 3
		})
	})
}
