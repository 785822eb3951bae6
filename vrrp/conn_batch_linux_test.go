package vrrp_test

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/leasehold/leasehold/test/nstest"
	"github.com/leasehold/leasehold/vrrp"
)

// batchPair opens a sending Conn on vb0 (10.6.0.1) and a receiving one on
// its veth peer vb0p (10.6.0.2), inside the caller's nstest namespace.
func batchPair(tb testing.TB) (tx, rx *vrrp.Conn) {
	tb.Helper()
	if nstest.Link(tb, "vb0", "10.6.0.1/24") == nil {
		tb.Fatal("no link")
	}
	peer, err := netlink.LinkByName("vb0p")
	if err != nil {
		tb.Fatal(err)
	}
	if err := netlink.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 6, 0, 2), Mask: net.CIDRMask(24, 32)}}); err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"all", "vb0", "vb0p"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/accept_local", []byte("1"), 0); err != nil {
			tb.Fatal(err)
		}
	}
	if tx, err = vrrp.Listen("vb0", false, vrrp.ConnOptions{}); err != nil {
		tb.Fatal(err)
	}
	if rx, err = vrrp.Listen("vb0p", false, vrrp.ConnOptions{Multicast: true}); err != nil {
		tb.Fatal(err)
	}
	return tx, rx
}

// batchRound sends n adverts with one Flush (one sendmmsg) and reads them
// back with ReadBatch (recvmmsg); it reports how many came.
func batchRound(tb testing.TB, out *vrrp.Outbox, rx vrrp.Socket, pkt []byte, src netip.Addr, n int, in []vrrp.Received) int {
	for range n {
		out.Add(pkt, src, vrrp.GroupV4)
	}
	if err := out.Flush(); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		if err := out.Err(i); err != nil {
			tb.Fatal(err)
		}
	}
	out.Reset()
	got := 0
	for got < n {
		k, err := rx.ReadBatch(in)
		if err != nil {
			tb.Fatal(err)
		}
		got += k
	}
	return got
}

// The Socket seam keeps the Linux batching: a batch of adverts out (one
// sendmmsg) and in (recvmmsg) allocates nothing, and the payloads and
// PacketMeta come through.
func TestConnBatchesKernel(t *testing.T) {
	nstest.Run(t, func() {
		tx, rx := batchPair(t)
		defer tx.Close()
		defer rx.Close()
		src := tx.Src()
		pkt, err := vrrp.Encode(nil, advert(9, 100, netip.MustParseAddr("10.6.0.100")), src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := vrrp.NewOutbox(tx)
		in := make([]vrrp.Received, 32)
		batchRound(t, out, rx, pkt, src, 16, in) // warm up the buffers
		allocs := testing.AllocsPerRun(50, func() { batchRound(t, out, rx, pkt, src, 16, in) })
		if allocs != 0 {
			t.Errorf("a batch of 16 out and in: %v allocations", allocs)
		}

		out.Add(pkt, src, vrrp.GroupV4)
		if err := out.Flush(); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		n, err := rx.ReadBatch(in[:1])
		if err != nil || n != 1 {
			t.Fatalf("read %d, %v", n, err)
		}
		m := in[0].Meta
		if string(in[0].Payload) != string(pkt) || m.Src != src || m.Dst != vrrp.GroupV4 || m.TTL != 255 {
			t.Errorf("received %x %+v", in[0].Payload, m)
		}
	})
}

// BenchmarkConnBatchKernel: 16 adverts out with one sendmmsg and in with
// recvmmsg over a veth pair, per advert.
func BenchmarkConnBatchKernel(b *testing.B) {
	nstest.Run(b, func() {
		tx, rx := batchPair(b)
		defer tx.Close()
		defer rx.Close()
		src := tx.Src()
		pkt, err := vrrp.Encode(nil, advert(9, 100, netip.MustParseAddr("10.6.0.100")), src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		out := vrrp.NewOutbox(tx)
		in := make([]vrrp.Received, 32)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			batchRound(b, out, rx, pkt, src, 16, in)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(16*b.N), "ns/advert")
	})
}
