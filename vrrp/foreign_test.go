package vrrp_test

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vrrptest"
)

type memberSet []netip.Addr

func (m memberSet) IsMember(a netip.Addr) bool { return slices.Contains(m, a) }

// Lease mode membership (issue 14): a foreign speaker with priority 254
// displaces no master, and its priority-0 adverts make no backup take
// over; its adverts are dropped as foreign_speaker and it is listed in the
// status with its address and priority. A member's advert still counts.
func TestSegmentMembership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		ipA, ipB := segFamilies[0].a, segFamilies[0].b
		members := memberSet{ipA, ipB}
		a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: true, members: members})
		defer a.stop()
		b := startSegHost(t, seg, "b", ipB, segOpts{prio: 100, preempt: true, members: members})
		defer b.stop()
		a.waitState(t, vrrp.StateMaster, 10*time.Second)
		b.waitState(t, vrrp.StateBackup, 10*time.Second)

		foreign := netip.MustParseAddr("10.0.0.50")
		encode := func(prio uint8) []byte {
			adv := &vrrp.Advert{Version: 3, VRID: segVRID, Priority: prio, Interval: segInterval / 10, Addrs: []netip.Addr{a.vip}}
			pkt, err := vrrp.Encode(nil, adv, foreign, vrrp.GroupV4, vrrp.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return pkt
		}
		high, zero := encode(254), encode(0)
		for i := range 100 {
			pkt := high
			if i%2 == 1 {
				pkt = zero
			}
			seg.Inject(foreign, pkt)
			time.Sleep(segInterval / 10)
		}
		synctest.Wait()
		if a.state() != vrrp.StateMaster || b.state() != vrrp.StateBackup {
			t.Fatalf("foreign speaker moved the roles: a %s, b %s", a.state(), b.state())
		}
		for _, h := range []*segHost{a, b} {
			s := h.in.Status()
			if n := h.in.Drops().Load(vrrp.DropForeignSpeaker); n != 100 || s.Drops["foreign_speaker"] != 100 {
				t.Errorf("%s: %d foreign adverts dropped, want 100", h.name, n)
			}
			if len(s.Foreign) != 1 || s.Foreign[0].Addr != foreign.String() || s.Foreign[0].Adverts != 100 {
				t.Errorf("%s: foreign speakers %+v", h.name, s.Foreign)
			}
		}
		if s := b.in.Status(); s.Master != ipA.String() {
			t.Errorf("b follows %s", s.Master)
		}

		// A member (b's address, as if b's priority rose) is heard.
		adv := &vrrp.Advert{Version: 3, VRID: segVRID, Priority: 250, Interval: segInterval, Addrs: []netip.Addr{a.vip}}
		pkt, err := vrrp.Encode(nil, adv, ipB, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seg.InjectPacket(vrrp.PacketMeta{Src: ipB, Dst: vrrp.GroupV4, TTL: 255}, pkt)
		a.waitState(t, vrrp.StateBackup, time.Second)
	})
}

// Authenticated adverts: a forged advert from a member's address is
// refused without the trailer (hmac_missing), with another key (hmac_bad),
// and a captured real advert replayed (hmac_replay); the roles stay. A
// member's advert signed with the key is heard.
func TestSegmentHMAC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		ipA, ipB := segFamilies[0].a, segFamilies[0].b
		key := []byte("a shared key of 32 bytes........")
		sniffer := seg.Socket("c", netip.MustParseAddr("10.0.0.3"), false)
		defer sniffer.Close()
		a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: true, hmacKey: key})
		defer a.stop()
		b := startSegHost(t, seg, "b", ipB, segOpts{prio: 100, preempt: true, hmacKey: key})
		defer b.stop()
		a.waitState(t, vrrp.StateMaster, 10*time.Second)
		b.waitState(t, vrrp.StateBackup, 10*time.Second)
		if s := b.in.Status(); s.Master != ipA.String() || s.AdvertsRecv == 0 {
			t.Fatalf("b does not hear a's signed adverts: %+v", s)
		}

		adv := &vrrp.Advert{Version: 3, VRID: segVRID, Priority: 250, Interval: segInterval, Addrs: []netip.Addr{a.vip}}
		plain, err := vrrp.Encode(nil, adv, ipB, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spoof := func(pkt []byte) {
			seg.InjectPacket(vrrp.PacketMeta{Src: ipB, Dst: vrrp.GroupV4, TTL: 255}, pkt)
			time.Sleep(100 * time.Millisecond)
		}
		for range 10 {
			spoof(plain)
			spoof(vrrp.AppendMAC(append([]byte(nil), plain...), []byte("not the key, but long enough"), ipB, vrrp.GroupV4,
				uint64(time.Now().UnixMicro())))
		}
		// Replay a's last advert (captured on the wire) to b.
		var last []byte
		for _, p := range sniffer.Drain() {
			if p.Meta.Src == ipA {
				last = p.Payload
			}
		}
		if last == nil {
			t.Fatal("no advert of a captured")
		}
		seg.InjectPacket(vrrp.PacketMeta{Src: ipA, Dst: vrrp.GroupV4, TTL: 255}, last)
		synctest.Wait()
		if a.state() != vrrp.StateMaster || b.state() != vrrp.StateBackup {
			t.Fatalf("forged adverts moved the roles: a %s, b %s", a.state(), b.state())
		}
		if n := a.in.Drops().Load(vrrp.DropMACMissing); n != 10 {
			t.Errorf("a: %d dropped for a missing MAC, want 10", n)
		}
		if n := a.in.Drops().Load(vrrp.DropBadMAC); n != 10 {
			t.Errorf("a: %d dropped for a bad MAC, want 10", n)
		}
		if n := b.in.Drops().Load(vrrp.DropReplay); n != 1 {
			t.Errorf("b: %d replays dropped, want 1", n)
		}

		// Signed with the key, fresh: heard.
		spoof(vrrp.AppendMAC(append([]byte(nil), plain...), key, ipB, vrrp.GroupV4, uint64(time.Now().UnixMicro())))
		a.waitState(t, vrrp.StateBackup, time.Second)
	})
}
