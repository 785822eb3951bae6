package vipaddr

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/leasehold/leasehold/test/nstest"
)

func TestAddRemoveIdempotentAndOrphans(t *testing.T) {
	state := filepath.Join(t.TempDir(), "vips.json")
	nstest.Run(t, func() {
		nstest.Link(t, "eth0", "10.9.0.2/24", "fd00::2/64")
		m := New(state)
		v4 := VIP{Iface: "eth0", Prefix: netip.MustParsePrefix("10.9.0.100/24")}
		v6 := VIP{Iface: "eth0", Prefix: netip.MustParsePrefix("fd00::100/64")}
		for range 2 { // twice: idempotent
			for _, v := range []VIP{v4, v6} {
				if err := m.Add(v, 0); err != nil {
					t.Fatalf("add %s: %v", v, err)
				}
			}
		}
		for _, v := range []VIP{v4, v6} {
			if ok, err := m.Has(v); err != nil || !ok {
				t.Fatalf("has %s = %v, %v; want true", v, ok, err)
			}
		}
		link, _ := netlink.LinkByName("eth0")
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
		labelled := false
		for _, a := range addrs {
			if a.IP.Equal(v4.Prefix.Addr().AsSlice()) {
				labelled = a.Label == "eth0"+LabelSuffix
			}
		}
		if !labelled {
			t.Errorf("IPv4 VIP not labelled eth0%s: %+v", LabelSuffix, addrs)
		}
		// A new manager (a restarted daemon) finds both as orphans.
		orphans, err := New(state).Orphans()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(orphans, v4) || !slices.Contains(orphans, v6) || len(orphans) != 2 {
			t.Fatalf("orphans = %v, want %v and %v", orphans, v4, v6)
		}
		// Without the state file, the IPv4 label still identifies it.
		orphans, err = New("").Orphans()
		if err != nil || !slices.Equal(orphans, []VIP{v4}) {
			t.Fatalf("label-only orphans = %v, %v; want [%v]", orphans, err, v4)
		}
		removed, err := New(state).RemoveOrphans()
		if err != nil || len(removed) != 2 {
			t.Fatalf("RemoveOrphans = %v, %v", removed, err)
		}
		for _, v := range []VIP{v4, v6} {
			if ok, _ := m.Has(v); ok {
				t.Errorf("%s still present after RemoveOrphans", v)
			}
			if err := m.Remove(v); err != nil {
				t.Errorf("second remove of %s: %v", v, err)
			}
		}
		if o, _ := New(state).Orphans(); len(o) != 0 {
			t.Errorf("orphans after removal: %v", o)
		}
	})
}

func TestLifetimeExpires(t *testing.T) {
	nstest.Run(t, func() {
		nstest.Link(t, "eth0", "10.9.0.2/24")
		m := New("")
		v := VIP{Iface: "eth0", Prefix: netip.MustParsePrefix("10.9.0.100/32")}
		if err := m.Add(v, time.Second); err != nil {
			t.Fatal(err)
		}
		link, _ := netlink.LinkByName("eth0")
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
		var got *netlink.Addr
		for i := range addrs {
			if addrs[i].IP.Equal(v.Prefix.Addr().AsSlice()) {
				got = &addrs[i]
			}
		}
		if got == nil || got.ValidLft <= 0 || got.ValidLft > 1 {
			t.Fatalf("VIP with 1 s lifetime: %+v", got)
		}
		// The kernel removes it on its own (0–1.25 s after the lifetime).
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if ok, _ := m.Has(v); !ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("VIP with a 1 s lifetime still present after 5 s")
	})
}
