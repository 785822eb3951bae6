package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/daemon/daemontest"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/vrrp"
)

// speak injects adverts for VRID 51 with priority prio every 100 ms from
// each of srcs (multicast, TTL 255) until ctx ends.
func speak(ctx context.Context, t *testing.T, w *daemontest.World, prio uint8, srcs ...netip.Addr) {
	var pkts [][]byte
	for _, src := range srcs {
		adv := &vrrp.Advert{Version: 3, VRID: 51, Priority: prio, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip}}
		pkt, err := vrrp.Encode(nil, adv, src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		pkts = append(pkts, pkt)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, src := range srcs {
			w.Seg.Inject(src, pkts[i])
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writes sums the lease requests the daemons sent for their group.
func writes(ds ...*testDaemon) uint64 {
	var n uint64
	for _, td := range ds {
		for _, g := range td.d.Status().Groups {
			n += g.QuorumAcquires + g.QuorumReleases
		}
	}
	return n
}

// A foreign VRRP speaker on the group's VRID with priority 254 and 0.1 s
// adverts (issue 14). Lease mode: it is no member, so the owner keeps the
// VIP (answering in every 10 ms sample), nobody writes to the quorum, and
// both nodes list it. Then the speaker spoofs both members' addresses (no
// authenticated adverts): each node now yields to the other's forged
// advert, and the storm guard bounds the lease's writes (node/doc.go).
func TestForeignSpeaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()

		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100)
		waitFor(t, 10*time.Second, "n1 owns", func() bool {
			return answering(w, "n1")() && n1.role() == "owner" && n2.role() == "backup"
		})
		for _, td := range []*testDaemon{n1, n2} {
			if m := td.d.Status().Members["VI_1"]; len(m) != 2 {
				t.Fatalf("%s: members %+v", td.name, m)
			}
		}

		foreign := netip.MustParseAddr("10.0.0.50")
		w0 := writes(n1, n2)
		ctx, stop := context.WithCancel(context.Background())
		var swg sync.WaitGroup
		swg.Go(func() { speak(ctx, t, w, 254, foreign) })
		const run = 10 * time.Second
		silent := 0
		for end := time.Now().Add(run); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if !answering(w, "n1")() {
				silent++
			}
		}
		stop()
		swg.Wait()
		if silent > 0 || n1.role() != "owner" {
			t.Errorf("foreign speaker: n1 silent in %d samples of 10 ms, role %s", silent, n1.role())
		}
		if d := writes(n1, n2) - w0; d != 0 {
			t.Errorf("foreign speaker: %d quorum writes in %v, want 0", d, run)
		}
		for _, td := range []*testDaemon{n1, n2} {
			in := td.d.Status().Instances[0]
			if len(in.Foreign) != 1 || in.Foreign[0].Addr != foreign.String() || in.Foreign[0].Priority != 254 ||
				in.Drops["foreign_speaker"] < 90 {
				t.Errorf("%s: foreign speakers %+v, %d dropped", td.name, in.Foreign, in.Drops["foreign_speaker"])
			}
		}

		// Spoofed members: the worst case for the storm guard.
		w0 = writes(n1, n2)
		ctx, stop = context.WithCancel(context.Background())
		swg.Go(func() { speak(ctx, t, w, 254, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")) })
		const storm = 2 * time.Minute
		start := time.Now()
		var first10 uint64
		for time.Since(start) < storm {
			time.Sleep(100 * time.Millisecond)
			if time.Since(start) <= 10*time.Second {
				first10 = writes(n1, n2) - w0
			}
		}
		stop()
		swg.Wait()
		total := writes(n1, n2) - w0
		// Per node: FlapLimit+3 acquires and releases in any 10 s; after the first
		// minute one of each per 30 s; plus the release of the grant n1
		// held when the storm began.
		if bound := uint64(2*2*(node.DefaultFlapLimit+4) + 1); first10 > bound {
			t.Errorf("spoofed members: %d quorum writes in the first 10 s, bound %d", first10, bound)
		}
		if bound := uint64(2*2*(node.DefaultFlapLimit+6+int(storm/node.DefaultFlapBackoffMax)) + 1); total > bound {
			t.Errorf("spoofed members: %d quorum writes in %v, bound %d", total, storm, bound)
		}
		t.Logf("spoofed members: %d quorum writes in the first 10 s, %d in %v (%.2f/s)", first10, total, storm, float64(total)/storm.Seconds())

		// The speaker gone, n1 owns again.
		waitFor(t, 2*node.DefaultFlapBackoffMax+10*time.Second, "n1 owns after the storm", func() bool {
			return answering(w, "n1")() && n1.role() == "owner"
		})
		n2.shutdown(t)
		n1.shutdown(t)
		time.Sleep(time.Second) // let a probe in flight end
		if v := w.Violations(); len(v) > 0 {
			t.Fatalf("two nodes answered for the VIP:\n%v", v)
		}
	})
}

// With authenticated adverts (auth_type HMAC) a forged advert from a
// member's address is refused too: the speaker spoofing both members at
// priority 254 moves nothing and costs no quorum write.
func TestForeignSpeakerSpoofingMembersHMAC(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "vrrp.key")
	if err := os.WriteFile(keyFile, []byte("a key shared by the group's nodes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf("authentication: {auth_type: HMAC, key_file: %s}", keyFile)
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, auth)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100, auth)
		waitFor(t, 10*time.Second, "n1 owns", func() bool {
			return answering(w, "n1")() && n1.role() == "owner" && n2.role() == "backup"
		})
		w0 := writes(n1, n2)
		ctx, stop := context.WithCancel(context.Background())
		var swg sync.WaitGroup
		swg.Go(func() { speak(ctx, t, w, 254, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")) })
		silent := 0
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if !answering(w, "n1")() {
				silent++
			}
		}
		stop()
		swg.Wait()
		if silent > 0 || n1.role() != "owner" {
			t.Errorf("spoofed members: n1 silent in %d samples of 10 ms, role %s", silent, n1.role())
		}
		if d := writes(n1, n2) - w0; d != 0 {
			t.Errorf("spoofed members: %d quorum writes, want 0", d)
		}
		for _, td := range []*testDaemon{n1, n2} {
			if n := td.d.Status().Instances[0].Drops["hmac_missing"]; n < 500 {
				t.Errorf("%s: %d adverts dropped for a missing MAC, want ~600", td.name, n)
			}
		}
		n2.shutdown(t)
		n1.shutdown(t)
		time.Sleep(time.Second)
		if v := w.Violations(); len(v) > 0 {
			t.Fatalf("two nodes answered for the VIP:\n%v", v)
		}
	})
}
