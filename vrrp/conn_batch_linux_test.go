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

// vethPair4 makes the veth pair name/namep with IPv4 addresses a and b
// (/24) inside the caller's nstest namespace, each end accepting packets
// from the other's (local) address.
func vethPair4(tb testing.TB, name string, a, b net.IP) {
	tb.Helper()
	if nstest.Link(tb, name, a.String()+"/24") == nil {
		tb.Fatal("no link")
	}
	peer, err := netlink.LinkByName(name + "p")
	if err != nil {
		tb.Fatal(err)
	}
	if err := netlink.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: b, Mask: net.CIDRMask(24, 32)}}); err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"all", name, name + "p"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/accept_local", []byte("1"), 0); err != nil {
			tb.Fatal(err)
		}
	}
}

// batchBench is a sending Conn on vb0 (10.6.0.1), a receiving one on its
// veth peer vb0p (10.6.0.2), an Outbox and an advert.
type batchBench struct {
	tx, rx *vrrp.Conn
	src    netip.Addr
	pkt    []byte
	out    *vrrp.Outbox
	in     []vrrp.Received
}

func newBatchBench(tb testing.TB) *batchBench {
	tb.Helper()
	vethPair4(tb, "vb0", net.IPv4(10, 6, 0, 1), net.IPv4(10, 6, 0, 2))
	var k batchBench
	var err error
	if k.tx, err = vrrp.Listen("vb0", false, vrrp.ConnOptions{}); err != nil {
		tb.Fatal(err)
	}
	if k.rx, err = vrrp.Listen("vb0p", false, vrrp.ConnOptions{Multicast: true}); err != nil {
		tb.Fatal(err)
	}
	k.src = k.tx.Src()
	if k.pkt, err = vrrp.Encode(nil, advert(9, 100, netip.MustParseAddr("10.6.0.100")), k.src, vrrp.GroupV4,
		vrrp.EncodeOptions{}); err != nil {
		tb.Fatal(err)
	}
	k.out, k.in = vrrp.NewOutbox(k.tx), make([]vrrp.Received, 32)
	return &k
}

func (k *batchBench) close() {
	k.tx.Close()
	k.rx.Close()
}

// round sends n adverts with one Flush (one sendmmsg) and reads them back
// with ReadBatch (recvmmsg); it reports how many came.
func (k *batchBench) round(tb testing.TB, n int) int {
	out := k.out
	for range n {
		out.Add(k.pkt, k.src, vrrp.GroupV4)
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
		m, err := k.rx.ReadBatch(k.in)
		if err != nil {
			tb.Fatal(err)
		}
		got += m
	}
	return got
}

// The Socket seam keeps the Linux batching: a batch of adverts out (one
// sendmmsg) and in (recvmmsg) allocates nothing, and the payloads and
// PacketMeta come through.
func TestConnBatchesKernel(t *testing.T) {
	nstest.Run(t, func() {
		k := newBatchBench(t)
		defer k.close()
		k.round(t, 16) // warm up the buffers
		if allocs := testing.AllocsPerRun(50, func() { k.round(t, 16) }); allocs != 0 {
			t.Errorf("a batch of 16 out and in: %v allocations", allocs)
		}

		k.out.Add(k.pkt, k.src, vrrp.GroupV4)
		if err := k.out.Flush(); err != nil {
			t.Fatal(err)
		}
		k.out.Reset()
		n, err := k.rx.ReadBatch(k.in[:1])
		if err != nil || n != 1 {
			t.Fatalf("read %d, %v", n, err)
		}
		m := k.in[0].Meta
		if string(k.in[0].Payload) != string(k.pkt) || m.Src != k.src || m.Dst != vrrp.GroupV4 || m.TTL != 255 {
			t.Errorf("received %x %+v", k.in[0].Payload, m)
		}
	})
}

// BenchmarkConnBatchKernel: 16 adverts out with one sendmmsg and in with
// recvmmsg over a veth pair, per advert.
func BenchmarkConnBatchKernel(b *testing.B) {
	nstest.Run(b, func() {
		k := newBatchBench(b)
		defer k.close()
		k.round(b, 16) // the receive buffers are made on first use
		b.ReportAllocs()
		for b.Loop() {
			k.round(b, 16)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(16*b.N), "ns/advert")
	})
}
