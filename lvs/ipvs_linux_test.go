package lvs

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Without the kernel's IPVS, OpenIPVS says so (moby/ipvs alone would open
// and break later). This machine's kernel has no IPVS; the VM lab's has.
func TestOpenIPVSNeedsTheFamily(t *testing.T) {
	_, famErr := netlink.GenlFamilyGet("IPVS")
	k, err := OpenIPVS()
	switch {
	case famErr != nil && !errors.Is(err, ErrNoIPVS):
		t.Fatalf("no IPVS family (%v), OpenIPVS: %v; want ErrNoIPVS", famErr, err)
	case famErr != nil:
		t.Logf("refused as it should: %v", err)
	case err != nil:
		t.Fatalf("IPVS family present, OpenIPVS: %v", err)
	default:
		k.Close()
	}
}

// With IPVS and CAP_NET_ADMIN, the table round-trips through the kernel
// in a fresh network namespace (the VM lab's kernel; skipped here).
func TestIPVSRoundTrip(t *testing.T) {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		t.Skip("kernel without IPVS")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); orig.Close() }()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("new netns: %v", err)
	}
	defer ns.Close()
	// IPVS accepts a real server only at a unicast or local address
	// (inet_addr_type): with no routing table at all (a fresh namespace
	// whose lo is down) every address is "broadcast" and refused.
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	k, err := OpenIPVS()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	key := Key{Proto: TCP, Addr: netip.MustParseAddrPort("10.0.0.99:80")}
	mark := Key{FWMark: 7}
	want := []Virtual{
		{Key: key, Scheduler: "wrr", Timeout: 50, Dests: []Dest{{Addr: netip.MustParseAddrPort("10.0.1.1:80"), Weight: 3, Forward: DR}}},
		{Key: mark, Scheduler: "rr", Dests: []Dest{{Addr: netip.MustParseAddrPort("10.0.1.2:0"), Weight: 1, Forward: TUN}}},
	}
	all := func(Key) bool { return true }
	// Added, then changed (scheduler, persistence, a weight, a real server
	// replaced), then removed: after each step the kernel's table is the
	// desired one (Diff is empty).
	changed := []Virtual{
		{Key: key, Scheduler: "rr", Dests: []Dest{{Addr: netip.MustParseAddrPort("10.0.1.1:80"), Weight: 0, Forward: DR},
			{Addr: netip.MustParseAddrPort("10.0.1.3:80"), Weight: 2, Forward: DR}}},
		{Key: mark, Scheduler: "rr", Netmask: 0xffffff00, Timeout: 30, Dests: []Dest{{Addr: netip.MustParseAddrPort("10.0.1.2:0"), Weight: 1, Forward: TUN}}},
	}
	for i, step := range [][]Virtual{want, changed, nil} {
		have, err := k.Table()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apply(k, Diff(step, have, all)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if have, err = k.Table(); err != nil {
			t.Fatal(err)
		}
		if ops := Diff(step, have, all); len(ops) != 0 || len(have) != len(step) {
			t.Fatalf("step %d: the kernel's table differs from the desired one: %v (table %+v)", i, ops, have)
		}
	}
}
