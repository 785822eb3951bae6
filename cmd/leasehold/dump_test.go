package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/vrrp"
)

// `vrrp dump --vrid 51 --members ...` counts an advert from a non-member as
// foreign_speaker and one from a member as accepted.
func TestDumpMembers(t *testing.T) {
	var out strings.Builder
	member, stranger := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.50")
	d := &dumper{out: &out, exp: &vrrp.Expect{VRID: 51, Version: 3, CheckTTL: true}, members: []netip.Addr{member}}
	adv := vrrp.Advert{Addrs: make([]netip.Addr, 0, 4)}
	for _, src := range []netip.Addr{member, stranger} {
		pkt, err := vrrp.Encode(nil, &vrrp.Advert{Version: 3, VRID: 51, Priority: 254, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}, src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.packet(pkt, vrrp.PacketMeta{Src: src, Dst: vrrp.GroupV4, TTL: 255}, &adv, time.Now())
	}
	d.summary()
	if d.ok != 1 || d.drops.Load(vrrp.DropForeignSpeaker) != 1 || !strings.Contains(out.String(), "dropped foreign_speaker") {
		t.Errorf("accepted %d, foreign %d:\n%s", d.ok, d.drops.Load(vrrp.DropForeignSpeaker), out.String())
	}
}
