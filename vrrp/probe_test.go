package vrrp

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/leasehold/leasehold/test/nstest"
)

// TestProbeFindsHolder: the VIP configured on the far end of a veth pair
// answers the probe (ARP from 0.0.0.0, NS from ::) with that end's MAC; a
// free VIP gets no answer.
func TestProbeFindsHolder(t *testing.T) {
	nstest.Run(t, func() {
		// No DAD: the link-local source must be usable at once.
		os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644)
		nstest.Link(t, "pr0", "10.8.0.1/24", "fd08::1/64")
		peer, err := netlink.LinkByName("pr0p")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"10.8.0.100/24", "fd08::100/64"} {
			na, _ := netlink.ParseAddr(a)
			na.Flags = 0x02 // IFA_F_NODAD
			if err := netlink.AddrAdd(peer, na); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Millisecond)
		want := peer.Attrs().HardwareAddr.String()
		ctx := context.Background()
		for _, c := range []struct {
			vips []string
			want string // "" = no conflict, else the VIP that must be named
		}{
			{[]string{"10.8.0.100"}, "10.8.0.100"},
			{[]string{"10.8.0.200"}, ""},
			{[]string{"fd08::100"}, "fd08::100"},
			{[]string{"fd08::200"}, ""},
			{[]string{"10.8.0.200", "10.8.0.201", "10.8.0.100"}, "10.8.0.100"},
			{[]string{"10.8.0.200", "fd08::200"}, ""},
			{[]string{"10.8.0.200", "fd08::100"}, "fd08::100"},
		} {
			var vips []netip.Addr
			for _, v := range c.vips {
				vips = append(vips, netip.MustParseAddr(v))
			}
			start := time.Now()
			got, ok, err := Probe(ctx, "pr0", vips, 100*time.Millisecond)
			took := time.Since(start)
			switch {
			case err != nil:
				t.Errorf("probe %v: %v", c.vips, err)
			case c.want == "" && ok:
				t.Errorf("probe %v: conflict %v, want none", c.vips, got)
			case c.want != "" && (!ok || got.VIP.String() != c.want || got.MAC != want):
				t.Errorf("probe %v = %v, %v; want %s from %s", c.vips, got, ok, c.want, want)
			case c.want == "" && took > time.Second:
				// One round for the whole set, not one per VIP (a loose
				// bound: this is about the shape, not the timing).
				t.Errorf("probe %v took %v", c.vips, took)
			}
		}
	})
}
