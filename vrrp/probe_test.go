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
			vip  string
			want string
		}{{"10.8.0.100", want}, {"10.8.0.200", ""}, {"fd08::100", want}, {"fd08::200", ""}} {
			got, err := ProbeARP(ctx, "pr0", netip.MustParseAddr(c.vip), 100*time.Millisecond)
			if err != nil || got != c.want {
				t.Errorf("probe %s = %q, %v; want %q", c.vip, got, err, c.want)
			}
		}
	})
}
