package vrrptest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vrrptest"
)

var (
	ipA, ipB, ipC = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	llA, llB      = netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")
	vip           = netip.MustParseAddr("10.0.0.100")
)

func send(t *testing.T, k *vrrptest.Socket, src, dst netip.Addr, b ...byte) {
	t.Helper()
	if err := k.WriteFrom(b, src, dst); err != nil {
		t.Fatal(err)
	}
}

func TestSegmentDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		a, b, c := seg.Socket("a", ipA, false), seg.Socket("b", ipB, false), seg.Socket("c", ipC, false)
		a6, b6 := seg.Socket("a", llA, true), seg.Socket("b", llB, true)
		send(t, a, ipA, vrrp.GroupV4, 1)  // b, c
		send(t, a, ipA, ipC, 2)           // c only
		send(t, a6, llA, vrrp.GroupV6, 3) // b6 only
		send(t, b, ipB, netip.MustParseAddr("10.0.0.9"), 4)
		if err := a.WriteFrom([]byte{5}, llA, vrrp.GroupV6); !errors.Is(err, vrrp.ErrInvalidAdvert) {
			t.Errorf("IPv6 on an IPv4 socket: %v", err)
		}
		payloads := func(rs []vrrp.Received) (out []byte) {
			for _, r := range rs {
				out = append(out, r.Payload...)
			}
			return out
		}
		for _, tc := range []struct {
			k    *vrrptest.Socket
			want []byte
		}{{a, nil}, {b, []byte{1}}, {c, []byte{1, 2}}, {a6, nil}, {b6, []byte{3}}} {
			if got := payloads(tc.k.Drain()); !slices.Equal(got, tc.want) {
				t.Errorf("%s six=%v got %v, want %v", tc.k.Host(), tc.k.IPv6(), got, tc.want)
			}
		}
	})
}

func TestSegmentMeta(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		a, b := seg.Socket("a", ipA, false), seg.Socket("b", ipB, false)
		src2 := netip.MustParseAddr("10.0.0.77")
		send(t, a, src2, vrrp.GroupV4, 1)
		p := make([]vrrp.Received, 4)
		n, err := b.ReadBatch(p)
		if err != nil || n != 1 {
			t.Fatalf("read %d, %v", n, err)
		}
		want := vrrp.PacketMeta{Src: src2, Dst: vrrp.GroupV4, TTL: 255, IfIndex: vrrptest.IfIndex}
		if p[0].Meta != want {
			t.Errorf("meta %+v, want %+v", p[0].Meta, want)
		}
		_ = a
	})
}

func TestSegmentFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		a, b, c := seg.Socket("a", ipA, false), seg.Socket("b", ipB, false), seg.Socket("c", ipC, false)
		seg.CutOneWay("a", "b")
		send(t, a, ipA, vrrp.GroupV4, 1) // c
		send(t, b, ipB, vrrp.GroupV4, 2) // a, c
		seg.Heal("a", "b")
		seg.Isolate("c")
		send(t, a, ipA, vrrp.GroupV4, 3)                                          // b
		if n := seg.Inject(netip.MustParseAddr("10.0.0.50"), []byte{4}); n != 2 { // a, b
			t.Errorf("inject reached %d sockets, want 2", n)
		}
		seg.Rejoin("c")
		seg.Cut("b", "c")
		send(t, c, ipC, vrrp.GroupV4, 5) // a
		seg.HealAll()
		send(t, c, ipC, ipB, 6) // b
		if n := seg.InjectPacket(vrrp.PacketMeta{Src: netip.MustParseAddr("10.0.0.50"), Dst: ipA, TTL: 64}, []byte{7}); n != 1 {
			t.Errorf("unicast inject reached %d sockets, want 1", n)
		}
		got := map[string][]byte{}
		for _, k := range []*vrrptest.Socket{a, b, c} {
			for _, r := range k.Drain() {
				got[k.Host()] = append(got[k.Host()], r.Payload...)
				if r.Payload[0] == 7 && r.Meta.TTL != 64 {
					t.Errorf("injected TTL %d", r.Meta.TTL)
				}
			}
		}
		want := map[string][]byte{"a": {2, 4, 5, 7}, "b": {3, 4, 6}, "c": {1, 2}}
		for h, w := range want {
			if !slices.Equal(got[h], w) {
				t.Errorf("%s got %v, want %v", h, got[h], w)
			}
		}
	})
}

func TestSegmentReadBlocksUntilDeliveryOrClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		a, b := seg.Socket("a", ipA, false), seg.Socket("b", ipB, false)
		type res struct {
			n   int
			err error
			at  time.Time
		}
		ch := make(chan res, 2)
		read := func() {
			p := make([]vrrp.Received, 4)
			n, err := b.ReadBatch(p)
			ch <- res{n, err, time.Now()}
		}
		start := time.Now()
		go read()
		time.Sleep(time.Second)
		send(t, a, ipA, vrrp.GroupV4, 1)
		r := <-ch
		if r.n != 1 || r.err != nil || r.at.Sub(start) != time.Second {
			t.Errorf("read %d, %v after %v", r.n, r.err, r.at.Sub(start))
		}
		go read()
		time.Sleep(time.Second)
		b.Close()
		if r := <-ch; !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("read after close: %v", r.err)
		}
		if err := b.WriteFrom([]byte{1}, ipB, vrrp.GroupV4); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after close: %v", err)
		}
	})
}

func TestSegmentOverflow(t *testing.T) {
	seg := vrrptest.NewSegment()
	a, b := seg.Socket("a", ipA, false), seg.Socket("b", ipB, false)
	for range vrrptest.QueueLen + 3 {
		send(t, a, ipA, vrrp.GroupV4, 1)
	}
	if got := b.Overflows(); got != 3 {
		t.Errorf("overflows %d, want 3", got)
	}
}

func TestAnnouncerRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		a, b := seg.Announcer("a"), seg.Announcer("b")
		seg.Socket("c", ipC, false)
		t0 := time.Now()
		if err := a.Announce([]netip.Addr{vip}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		seg.Isolate("b")
		if err := b.Announce([]netip.Addr{vip}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		a.Fail(boom)
		if err := a.Announce([]netip.Addr{vip}); !errors.Is(err, boom) {
			t.Errorf("failing announcer: %v", err)
		}
		b.Close()
		if err := b.Announce([]netip.Addr{vip}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("closed announcer: %v", err)
		}
		got := seg.Announcements()
		if len(got) != 2 {
			t.Fatalf("announcements %+v", got)
		}
		if g := got[0]; g.Host != "a" || !g.At.Equal(t0) || !slices.Equal(g.VIPs, []netip.Addr{vip}) ||
			!slices.Equal(g.Heard, []string{"b", "c"}) {
			t.Errorf("first %+v", g)
		}
		if g := got[1]; g.Host != "b" || g.At.Sub(t0) != time.Second || len(g.Heard) != 0 {
			t.Errorf("second %+v", g)
		}
	})
}

func TestProber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		probeA := seg.Prober("a")
		ctx := context.Background()
		vips := []netip.Addr{netip.MustParseAddr("10.0.0.99"), vip}

		start := time.Now()
		if _, ok, err := probeA(ctx, "eth0", vips, time.Second); ok || err != nil {
			t.Errorf("empty segment: ok %v err %v", ok, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("probe without answer took %v, want the wait", d)
		}

		seg.Claim("a", vip) // our own claim is no conflict
		seg.Claim("b", vip)
		start = time.Now()
		c, ok, err := probeA(ctx, "eth0", vips, time.Second)
		if !ok || err != nil || c.VIP != vip || c.MAC != seg.MAC("b") || time.Since(start) != 0 {
			t.Errorf("conflict: %+v %v %v after %v", c, ok, err, time.Since(start))
		}

		seg.CutOneWay("b", "a") // b's replies are lost
		if _, ok, _ := probeA(ctx, "eth0", vips, time.Second); ok {
			t.Error("conflict reported through a cut")
		}
		seg.HealAll()

		// A claim made during the wait is seen at the second round.
		seg.Release("b", vip)
		go func() {
			time.Sleep(100 * time.Millisecond)
			seg.Claim("b", vip)
		}()
		start = time.Now()
		if _, ok, _ := probeA(ctx, "eth0", vips, time.Second); !ok || time.Since(start) != 500*time.Millisecond {
			t.Errorf("late claim: ok %v after %v", ok, time.Since(start))
		}
		if h := seg.Holders(vip); !slices.Equal(h, []string{"a", "b"}) {
			t.Errorf("holders %v", h)
		}

		cctx, cancel := context.WithCancel(ctx)
		seg.Release("b", vip)
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}()
		if _, _, err := probeA(cctx, "eth0", vips, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled probe: %v", err)
		}
	})
}
