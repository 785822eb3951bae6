package node_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

func TestMemberKey(t *testing.T) {
	for _, a := range []string{"10.0.0.1", "fe80::1", "2001:db8::7"} {
		addr := netip.MustParseAddr(a)
		k := node.MemberKey("VI_1", addr.WithZone("eth0"))
		inst, got, ok := node.ParseMemberKey(k)
		if !ok || inst != "VI_1" || got != addr {
			t.Errorf("%s: %q parsed as %q %v %v", a, k, inst, got, ok)
		}
	}
	for _, k := range []string{"VI_1", "", "~member~10.0.0.1", "VI_1~member~nope"} {
		if node.IsMemberKey(k) {
			t.Errorf("%q taken for a member key", k)
		}
	}
}

// Two nodes register with an instance at the quorum and learn each other;
// a node whose session expires is forgotten and registers again with its
// next session. The self and the configured peers are members throughout,
// a stranger never. Each ranks the others as VRRP does (priority, then
// address) for the restore window.
func TestRosterLearnsFromQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := quorumtest.NewMemory(testTTL)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ipA, ipB := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		peer := netip.MustParseAddr("10.0.0.9")
		stranger := netip.MustParseAddr("10.0.0.50")
		ra := node.NewRoster("VI_1", ipA, 120, []netip.Addr{peer})
		rb := node.NewRoster("VI_1", ipB, 100, nil)
		ipC := netip.MustParseAddr("10.0.0.3")
		rc := node.NewRoster("VI_1", ipC, 120, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var sups []*node.Supervisor
		for _, n := range []struct {
			name string
			r    *node.Roster
		}{{"n1", ra}, {"n2", rb}, {"n3", rc}} {
			s := node.NewSupervisor(m.Client(n.name, testOptions(n.name)), nil, log)
			s.AddRoster(n.r)
			sups = append(sups, s)
			wg.Go(func() { s.Run(ctx) })
		}
		defer func() {
			cancel()
			wg.Wait()
			for _, s := range sups {
				s.Close(context.Background())
			}
		}()

		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if !ra.IsMember(ipB) || !rb.IsMember(ipA) || !ra.Registered() || !rb.Registered() {
			t.Fatalf("not learned: a %+v, b %+v", ra.Members(), rb.Members())
		}
		if !ra.IsMember(peer) || ra.IsMember(stranger) || rb.IsMember(peer) {
			t.Errorf("static membership wrong: a %+v, b %+v", ra.Members(), rb.Members())
		}
		if got := ra.Members(); len(got) != 4 || got[2].Node != "n2" || got[2].Priority != 100 || got[2].Source != "quorum" {
			t.Errorf("a's members %+v", got)
		}
		// n1 and n3 share priority 120; n3's address is higher.
		if !ra.HigherRegistered() || !rb.HigherRegistered() || rc.HigherRegistered() {
			t.Errorf("ranked wrong: higher registered for n1 %v (want true), n2 %v (true), n3 %v (false)",
				ra.HigherRegistered(), rb.HigherRegistered(), rc.HigherRegistered())
		}

		m.Partition("n2")
		m.Partition("n3")
		time.Sleep(3 * testTTL)
		synctest.Wait()
		if ra.IsMember(ipB) {
			t.Errorf("n2 still a member after its session expired: %+v", ra.Members())
		}
		if ra.HigherRegistered() {
			t.Errorf("n1 ranks below a member whose session expired: %+v", ra.Members())
		}
		m.Heal("n3")
		m.Heal("n2")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !ra.IsMember(ipB) || !rb.Registered() {
			t.Errorf("n2 not registered again: a %+v", ra.Members())
		}
	})
}
