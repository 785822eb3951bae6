package node

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/fencing/fencingtest"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
)

// gateVRRP is a VRRP instance as the group sees it; like the real one it
// asks the gate when told to announce.
type gateVRRP struct {
	mu        sync.Mutex
	gate      vrrp.Gate
	announced []bool // the gate's answer at each Announce
}

func (v *gateVRRP) Inject(vrrp.Event)     {}
func (v *gateVRRP) SetFault(string, bool) {}
func (v *gateVRRP) Announce() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.announced = append(v.announced, v.gate.MayAnnounce(time.Now()))
}

type nopAddrs struct{}

func (nopAddrs) Add(time.Duration) error { return nil }
func (nopAddrs) Remove() error           { return nil }

type grantLease struct{ epoch uint64 }

func (l *grantLease) Acquire(_ context.Context, group string, _ int) (quorum.Grant, error) {
	l.epoch++
	return quorum.Grant{Group: group, Epoch: l.epoch}, nil
}
func (l *grantLease) Release(context.Context, quorum.Grant) error { return nil }

// The group's gate follows its machine: closed before a session, open to
// adverts with one, open to announcements once owner (already when the
// Announce action runs), closed when the deadline passes without renewal
// (a freeze), whatever the group loop has done since.
func TestGroupGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const margin = 100 * time.Millisecond
		v := &gateVRRP{}
		vip := netip.MustParseAddr("10.0.0.100")
		fence := fencingtest.New(time.Now)
		if err := fence.Manage([]netip.Addr{vip}); err != nil {
			t.Fatal(err)
		}
		g, err := NewGroup(GroupConfig{
			Machine: Config{Group: "VI_1", StepTimeout: 500 * time.Millisecond, RetryInterval: 200 * time.Millisecond,
				DemoteBudget: 50 * time.Millisecond},
			VIPs: []netip.Addr{vip}, FenceMargin: margin,
		}, GroupDeps{VRRP: v, Addrs: nopAddrs{}, Fence: fence, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		gate := g.Gate()
		v.gate = gate
		check := func(when string, advert, announce bool) {
			t.Helper()
			now := time.Now()
			if a, b := gate.MayAdvertise(now), gate.MayAnnounce(now); a != advert || b != announce {
				t.Fatalf("%s: gate advert=%v announce=%v, want %v %v", when, a, b, advert, announce)
			}
		}
		check("before a session", false, false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go g.Run(ctx)
		g.SetLease(&grantLease{})
		start := time.Now()
		g.Post(SessionUp{Deadline: start.Add(2 * time.Second)})
		synctest.Wait()
		check("session up", true, false)
		g.Post(VRRPMaster{})
		synctest.Wait()
		if g.Role() != RoleOwner {
			t.Fatalf("role %v, want owner: %+v", g.Role(), g.Status())
		}
		check("owner", true, true)
		v.mu.Lock()
		if len(v.announced) != 1 || !v.announced[0] {
			t.Fatalf("Announce saw the gate %v, want open once", v.announced)
		}
		v.mu.Unlock()
		// Inside the fence margin (the kernel no longer answers for the
		// VIP): adverts yes, announcements no.
		time.Sleep(2*time.Second - margin - time.Nanosecond - time.Since(start))
		check("just before the fence margin", true, true)
		time.Sleep(time.Nanosecond)
		check("inside the fence margin", true, false)
		time.Sleep(margin)
		check("deadline passed", false, false)
		synctest.Wait()
		if g.Role() == RoleOwner {
			t.Fatalf("still owner after the deadline")
		}
		g.Post(Renewed{Deadline: time.Now().Add(2 * time.Second)})
		synctest.Wait()
		check("renewed (the lease was still held)", true, g.Role() == RoleOwner)
	})
}
