package vrrp_test

import (
	"net/netip"
	"testing"

	"github.com/leasehold/leasehold/test/nstest"
	"github.com/leasehold/leasehold/vrrp"
)

// batchBench is one Conn on lo that sends adverts to its own address
// (127.0.0.1) and reads them back, an Outbox and an advert.
type batchBench struct {
	conn *vrrp.Conn
	src  netip.Addr
	pkt  []byte
	out  *vrrp.Outbox
	in   []vrrp.Received
}

func newBatchBench(tb testing.TB) *batchBench {
	tb.Helper()
	var k batchBench
	var err error
	if k.conn, err = vrrp.Listen("lo", false, vrrp.ConnOptions{}); err != nil {
		tb.Fatal(err)
	}
	k.src = k.conn.Src()
	if k.pkt, err = vrrp.Encode(nil, advert(9, 100, netip.MustParseAddr("10.6.0.100")), k.src, k.src,
		vrrp.EncodeOptions{}); err != nil {
		tb.Fatal(err)
	}
	k.out, k.in = vrrp.NewOutbox(k.conn), make([]vrrp.Received, 32)
	return &k
}

func (k *batchBench) close() { k.conn.Close() }

// round sends n adverts with one Flush (one sendmmsg) and reads them back
// with ReadBatch (recvmmsg); it reports how many came.
func (k *batchBench) round(tb testing.TB, n int) int {
	out := k.out
	for range n {
		out.Add(k.pkt, k.src, k.src)
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
		m, err := k.conn.ReadBatch(k.in)
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

		k.out.Add(k.pkt, k.src, k.src)
		if err := k.out.Flush(); err != nil {
			t.Fatal(err)
		}
		k.out.Reset()
		n, err := k.conn.ReadBatch(k.in[:1])
		if err != nil || n != 1 {
			t.Fatalf("read %d, %v", n, err)
		}
		m := k.in[0].Meta
		if string(k.in[0].Payload) != string(k.pkt) || m.Src != k.src || m.Dst != k.src || m.TTL != 255 {
			t.Errorf("received %x %+v", k.in[0].Payload, m)
		}
	})
}

// BenchmarkConnBatchKernel: 16 adverts out with one sendmmsg and in with
// recvmmsg over lo, per advert.
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
