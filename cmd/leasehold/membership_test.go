package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node"
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

// `leasehold status` (text) lists each instance's members and its foreign
// speakers with address and priority.
func TestStatusMembership(t *testing.T) {
	doc := daemon.StatusDoc{
		Instances: []vrrp.Status{{Name: "VI_1", HMAC: true, Foreign: []vrrp.ForeignSpeaker{
			{Addr: "10.0.0.50", Priority: 254, Adverts: 102, LastSeen: time.Now()}}}},
		Members: map[string][]node.RosterEntry{"VI_1": {{Addr: "10.0.0.1", Source: "self"}, {Addr: "10.0.0.2", Node: "n2", Source: "quorum"}}},
	}
	var out strings.Builder
	writeMembership(&out, doc)
	for _, want := range []string{"VI_1 members: 10.0.0.1 (self), 10.0.0.2 (quorum n2), adverts authenticated (HMAC)",
		"VI_1 FOREIGN SPEAKER 10.0.0.50 priority 254: 102 adverts dropped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}

// `leasehold status` (text) lists the DRBD resources and why a promotion
// was refused.
func TestStatusDRBD(t *testing.T) {
	doc := daemon.StatusDoc{DRBD: []daemon.DRBDStatus{{Group: "VI_1", Resource: "r0", Role: "Secondary", PeerRole: "Unknown",
		CState: "WFConnection", Disk: "Inconsistent", PeerDisk: "DUnknown", Refusals: 3,
		LastRefusal: "local disk Inconsistent (never synced, or a resync target not finished)"}}}
	var out strings.Builder
	writeDRBD(&out, doc)
	for _, want := range []string{"DRBD", "r0", "Secondary/Unknown", "WFConnection", "Inconsistent/DUnknown", "3", "local disk Inconsistent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
	out.Reset()
	writeDRBD(&out, daemon.StatusDoc{})
	if out.Len() != 0 {
		t.Errorf("no DRBD, yet %q", out.String())
	}
}

// `leasehold status` (text) lists the MySQL servers: mode, health, kills
// and why a promotion was refused.
func TestStatusMySQL(t *testing.T) {
	doc := daemon.StatusDoc{MySQL: []daemon.MySQLStatus{{Group: "VI_1", Instance: "VI_1", Server: "/run/mysqld/mysqld.sock",
		Healthy: true, LastCheck: "up; replicating, lag 0s", Killed: 4, Refusals: 1, LastRefusal: "stale epoch 7: server 2 recorded epoch 9"},
		{Group: "VI_2", Server: "127.0.0.1:3307", Writable: 12, LastCheck: "replication SQL thread No: Duplicate entry"}}}
	var out strings.Builder
	writeMySQL(&out, doc)
	for _, want := range []string{"MYSQL", "/run/mysqld/mysqld.sock", "read-only", "stale epoch 7", "writable (epoch 12)", "failing", "Duplicate entry"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
	out.Reset()
	writeMySQL(&out, daemon.StatusDoc{})
	if out.Len() != 0 {
		t.Errorf("no MySQL, yet %q", out.String())
	}
}

// `leasehold status` (text) lists virtual servers and their real servers
// with check state, weight and weight in the table.
func TestStatusLVS(t *testing.T) {
	st := &lvs.Status{Mode: lvs.ModeOwner, Ops: 3, VirtualServers: []lvs.ServiceStatus{{Name: "192.168.1.99 80", Active: true, QuorumUp: true,
		LiveWeight: 1, RealServers: []lvs.RealStatus{
			{Addr: "192.168.1.13:80", Alive: true, Weight: 1, TableWeight: 1, Checks: []lvs.CheckStatus{{Kind: lvs.TCPCheck, Up: true, OK: 9}}},
			{Addr: "192.168.1.14:80", Weight: 1, TableWeight: -1, Downs: 1,
				Checks: []lvs.CheckStatus{{Kind: lvs.TCPCheck, OK: 2, Failed: 3, LastError: "connection refused"}}},
		}}}}
	var out strings.Builder
	writeLVS(&out, st)
	for _, want := range [][]string{{"LVS (lvs_mode owner): 3 table changes"}, {"192.168.1.99 80", "active", "quorum up"},
		{"192.168.1.13:80", "up", "TCP_CHECK up 9/0"}, {"192.168.1.14:80", "down", "-", "0/1", "connection refused"}} {
		found := false
		for _, line := range strings.Split(out.String(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no line with %q in\n%s", want, out.String())
		}
	}
}
