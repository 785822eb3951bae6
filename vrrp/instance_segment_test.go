package vrrp_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vrrptest"
)

// Instances with real Muxes on an in-memory link (vrrptest.Segment), in
// synctest bubbles: the timings asserted are the RFC's to the millisecond
// and take no wall time.

const (
	segVRID     = 51
	segInterval = time.Second
	// slack: the Mux delivers a timer up to its coalesce window (1 ms) late.
	slack = 2 * time.Millisecond
)

// segHost is one host of a segment test: a socket, a Mux, one instance.
type segHost struct {
	name     string
	src, vip netip.Addr
	in       *vrrp.Instance
	wake     chan struct{} // a transition was recorded (capacity 1)

	mu    sync.Mutex
	trans []segTransition
	ups   int
	downs int

	stopInstance, stop func()
}

type segTransition struct {
	from, to vrrp.State
	at       time.Time
}

type segEffects struct{ h *segHost }

func (e segEffects) Up(context.Context) error {
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	e.h.ups++
	return nil
}

func (e segEffects) Down(context.Context) error {
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	e.h.downs++
	return nil
}

type segOpts struct {
	prio    uint8
	preempt bool
	peers   []netip.Addr // unicast peers; none: multicast
	members vrrp.Members // lease mode membership; nil: anyone
	hmacKey []byte       // authenticated adverts
}

// startSegHost builds and runs a host on seg; call stop (deferred) before
// the bubble ends.
func startSegHost(t *testing.T, seg *vrrptest.Segment, name string, src netip.Addr, o segOpts) *segHost {
	t.Helper()
	vip := netip.MustParseAddr("10.0.0.100")
	if src.Is6() {
		vip = netip.MustParseAddr("2001:db8::100")
	}
	h := &segHost{name: name, src: src, vip: vip, wake: make(chan struct{}, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sock := seg.Socket(name, src, src.Is6())
	mux := vrrp.NewMux(sock, log)
	cfg := vrrp.InstanceConfig{
		Name: "VI_1", Iface: "eth0",
		Machine: vrrp.Config{VRID: segVRID, Priority: o.prio, Version: 3, AdvertInterval: segInterval,
			Preempt: o.preempt, InitialState: vrrp.StateBackup},
		Expect:    vrrp.Expect{Version: 3, VRID: segVRID, Interval: segInterval, CheckTTL: true},
		Peers:     o.peers,
		VIPs:      []netip.Addr{vip},
		GarpDelay: 5 * time.Second,
		HMACKey:   o.hmacKey,
	}
	in, err := vrrp.NewInstance(cfg, mux.Socket(), seg.Announcer(name), segEffects{h}, log)
	if err != nil {
		t.Fatal(err)
	}
	in.OnTransition = func(tr vrrp.Transition, _ uint8) {
		h.mu.Lock()
		h.trans = append(h.trans, segTransition{tr.From, tr.To, time.Now()})
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	if o.members != nil {
		in.SetMembers(o.members)
	}
	if err := mux.Add(in); err != nil {
		t.Fatal(err)
	}
	h.in = in
	mctx, mcancel := context.WithCancel(context.Background())
	ictx, icancel := context.WithCancel(context.Background())
	var mwg, iwg sync.WaitGroup
	mwg.Go(func() { mux.Run(mctx) })
	iwg.Go(func() { in.Run(ictx, time.Second) })
	h.stopInstance = sync.OnceFunc(func() { icancel(); iwg.Wait() })
	h.stop = func() { h.stopInstance(); mcancel(); mwg.Wait() }
	return h
}

// state is the instance's state now.
func (h *segHost) state() vrrp.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.trans) == 0 {
		return vrrp.StateInit
	}
	return h.trans[len(h.trans)-1].to
}

// stateAt is the state h had at time at (after the transitions of that
// instant).
func (h *segHost) stateAt(at time.Time) vrrp.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := vrrp.StateInit
	for _, tr := range h.trans {
		if tr.at.After(at) {
			break
		}
		s = tr.to
	}
	return s
}

// waitState waits until h is in want and returns when it got there; it
// fails after within.
func (h *segHost) waitState(t *testing.T, want vrrp.State, within time.Duration) time.Time {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		h.mu.Lock()
		if n := len(h.trans); n > 0 && h.trans[n-1].to == want {
			at := h.trans[n-1].at
			h.mu.Unlock()
			return at
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-timer.C:
			t.Fatalf("%s: not %s after %v (state %s)", h.name, want, within, h.state())
		}
	}
}

// checkAnnouncers asserts that every GARP/NA on seg came from a host that
// was master at that instant.
func checkAnnouncers(t *testing.T, seg *vrrptest.Segment, hosts ...*segHost) {
	t.Helper()
	for _, a := range seg.Announcements() {
		i := slices.IndexFunc(hosts, func(h *segHost) bool { return h.name == a.Host })
		if i < 0 {
			t.Errorf("announcement from unknown host %s", a.Host)
			continue
		}
		if s := hosts[i].stateAt(a.At); s != vrrp.StateMaster {
			t.Errorf("%s announced %v at %v while %s", a.Host, a.VIPs, a.At, s)
		}
	}
}

func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want || got > want+slack {
		t.Errorf("%s after %v, want %v", what, got, want)
	}
}

var segFamilies = []struct {
	name string
	a, b netip.Addr
}{
	{"ipv4", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
	{"ipv6", netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")},
}

// Two backups elect the higher priority at its master-down interval; the
// other stays backup, hears it, and never announces.
func TestSegmentElection(t *testing.T) {
	for _, fam := range segFamilies {
		t.Run(fam.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				seg := vrrptest.NewSegment()
				t0 := time.Now()
				a := startSegHost(t, seg, "a", fam.a, segOpts{prio: 200, preempt: true})
				defer a.stop()
				b := startSegHost(t, seg, "b", fam.b, segOpts{prio: 100, preempt: true})
				defer b.stop()

				at := a.waitState(t, vrrp.StateMaster, 10*time.Second)
				within(t, "a master", at.Sub(t0), vrrp.MasterDownInterval(3, 200, segInterval))
				time.Sleep(30 * time.Second)
				if s := b.in.Status(); s.State != "backup" || s.Master != fam.a.String() || s.MasterPrio != 200 {
					t.Errorf("b: %+v", s)
				}
				if s := a.in.Status(); s.State != "master" || s.AdvertsSent < 30 || s.LastError != "" {
					t.Errorf("a: %+v", s)
				}
				anns := seg.Announcements()
				if len(anns) != 2 || anns[1].At.Sub(anns[0].At) != 5*time.Second ||
					!slices.Equal(anns[0].Heard, []string{"b"}) {
					t.Errorf("announcements: %+v", anns)
				}
				checkAnnouncers(t, seg, a, b)
			})
		})
	}
}

// A master whose link fails keeps believing it is master; the backup takes
// over at its master-down interval after the last advert it heard. When
// the link comes back the lower priority master yields at the next advert.
// (Two masters in between: that is why leasehold gates the VIPs by a
// quorum lease.)
func TestSegmentIsolatedMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		ipA, ipB := segFamilies[0].a, segFamilies[0].b
		a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: true})
		defer a.stop()
		b := startSegHost(t, seg, "b", ipB, segOpts{prio: 100, preempt: true})
		defer b.stop()
		elected := a.waitState(t, vrrp.StateMaster, 10*time.Second)

		// Isolate a half-way between two adverts.
		time.Sleep(10*segInterval + segInterval/2)
		lastHeard := elected.Add(10 * segInterval)
		seg.Isolate("a")
		isolated := time.Now()
		at := b.waitState(t, vrrp.StateMaster, 10*time.Second)
		within(t, "b master after a's last advert", at.Sub(lastHeard), vrrp.MasterDownInterval(3, 100, segInterval))
		if at.Sub(isolated) >= vrrp.MasterDownInterval(3, 100, segInterval) {
			t.Errorf("b master %v after isolation", at.Sub(isolated))
		}
		if a.state() != vrrp.StateMaster {
			t.Errorf("isolated a: %s", a.state())
		}

		time.Sleep(10 * time.Second)
		seg.Rejoin("a")
		rejoined := time.Now()
		back := b.waitState(t, vrrp.StateBackup, 5*time.Second)
		if d := back.Sub(rejoined); d > segInterval+slack {
			t.Errorf("b yielded %v after the link came back", d)
		}
		time.Sleep(10 * time.Second)
		if a.state() != vrrp.StateMaster || b.state() != vrrp.StateBackup {
			t.Errorf("after rejoin: a %s, b %s", a.state(), b.state())
		}
		checkAnnouncers(t, seg, a, b)
		var fromB int
		for _, an := range seg.Announcements() {
			if an.Host == "b" {
				fromB++
				if !slices.Equal(an.Heard, nil) {
					t.Errorf("b's GARP at %v reached %v through an isolated link", an.At, an.Heard)
				}
			}
		}
		if fromB == 0 {
			t.Error("b never announced while master")
		}
	})
}

// A higher priority backup that starts later takes over a lower priority
// master with preemption, and does not without (nopreempt).
func TestSegmentPreempt(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		name := "preempt"
		if !preempt {
			name = "nopreempt"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				seg := vrrptest.NewSegment()
				ipA, ipB := segFamilies[0].a, segFamilies[0].b
				b := startSegHost(t, seg, "b", ipB, segOpts{prio: 100, preempt: true})
				defer b.stop()
				b.waitState(t, vrrp.StateMaster, 10*time.Second)
				time.Sleep(10*time.Second + segInterval/4)

				started := time.Now()
				a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: preempt})
				defer a.stop()
				if !preempt {
					time.Sleep(30 * time.Second)
					if a.state() != vrrp.StateBackup || b.state() != vrrp.StateMaster {
						t.Errorf("nopreempt: a %s, b %s", a.state(), b.state())
					}
					if s := a.in.Status(); s.Master != ipB.String() {
						t.Errorf("a does not follow b: %+v", s)
					}
					checkAnnouncers(t, seg, a, b)
					return
				}
				at := a.waitState(t, vrrp.StateMaster, 10*time.Second)
				within(t, "a preempts", at.Sub(started), vrrp.MasterDownInterval(3, 200, segInterval))
				yielded := b.waitState(t, vrrp.StateBackup, time.Second)
				if yielded.Sub(at) > slack {
					t.Errorf("b yielded %v after a became master", yielded.Sub(at))
				}
				time.Sleep(10 * time.Second)
				if a.state() != vrrp.StateMaster || b.state() != vrrp.StateBackup {
					t.Errorf("a %s, b %s", a.state(), b.state())
				}
				checkAnnouncers(t, seg, a, b)
			})
		})
	}
}

// A master that stops sends a priority-0 advert: the backup takes over
// after its skew time, not its master-down interval.
func TestSegmentPriorityZeroHandover(t *testing.T) {
	for _, fam := range segFamilies {
		t.Run(fam.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				seg := vrrptest.NewSegment()
				a := startSegHost(t, seg, "a", fam.a, segOpts{prio: 200, preempt: true})
				defer a.stop()
				b := startSegHost(t, seg, "b", fam.b, segOpts{prio: 100, preempt: true})
				defer b.stop()
				a.waitState(t, vrrp.StateMaster, 10*time.Second)
				time.Sleep(5*time.Second + segInterval/3)

				stopped := time.Now()
				a.stopInstance()
				at := b.waitState(t, vrrp.StateMaster, 10*time.Second)
				within(t, "b master after a stopped", at.Sub(stopped), vrrp.SkewTime(3, 100, segInterval))
				a.mu.Lock()
				ups, downs := a.ups, a.downs
				a.mu.Unlock()
				if ups != 1 || downs < 1 || a.state() == vrrp.StateMaster {
					t.Errorf("a after stop: %s, %d up, %d down", a.state(), ups, downs)
				}
				checkAnnouncers(t, seg, a, b)
			})
		})
	}
}

// A foreign speaker: adverts with TTL 64 are dropped and counted; a
// higher priority master makes ours yield.
func TestSegmentForeignSpeaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		ipA := segFamilies[0].a
		a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: true})
		defer a.stop()
		a.waitState(t, vrrp.StateMaster, 10*time.Second)

		foreign := netip.MustParseAddr("10.0.0.50")
		adv := &vrrp.Advert{Version: 3, VRID: segVRID, Priority: 250, Interval: segInterval, Addrs: []netip.Addr{a.vip}}
		pkt, err := vrrp.Encode(nil, adv, foreign, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seg.InjectPacket(vrrp.PacketMeta{Src: foreign, Dst: vrrp.GroupV4, TTL: 64}, pkt)
		synctest.Wait()
		if n := a.in.Drops().Load(vrrp.DropBadTTL); n != 1 || a.state() != vrrp.StateMaster {
			t.Errorf("TTL 64: %d dropped, state %s", n, a.state())
		}
		if n := seg.Inject(foreign, pkt); n != 1 {
			t.Fatalf("inject reached %d sockets", n)
		}
		a.waitState(t, vrrp.StateBackup, time.Second)
		if s := a.in.Status(); s.Master != foreign.String() || s.MasterPrio != 250 {
			t.Errorf("a follows %s/%d", s.Master, s.MasterPrio)
		}
	})
}

// Unicast peers: the adverts go to the named peer only (a third host hears
// none) and the election works as with multicast.
func TestSegmentUnicastPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := vrrptest.NewSegment()
		ipA, ipB := segFamilies[0].a, segFamilies[0].b
		sniffer := seg.Socket("c", netip.MustParseAddr("10.0.0.3"), false)
		defer sniffer.Close()
		a := startSegHost(t, seg, "a", ipA, segOpts{prio: 200, preempt: true, peers: []netip.Addr{ipB}})
		defer a.stop()
		b := startSegHost(t, seg, "b", ipB, segOpts{prio: 100, preempt: true, peers: []netip.Addr{ipA}})
		defer b.stop()
		a.waitState(t, vrrp.StateMaster, 10*time.Second)
		time.Sleep(10 * time.Second)
		if s := b.in.Status(); s.State != "backup" || s.Master != ipA.String() || s.AdvertsRecv < 10 {
			t.Errorf("b: %+v", s)
		}
		if got := sniffer.Drain(); len(got) != 0 {
			t.Errorf("a third host heard %d unicast adverts", len(got))
		}
		stopped := time.Now()
		a.stopInstance()
		at := b.waitState(t, vrrp.StateMaster, 10*time.Second)
		within(t, "b master after a stopped", at.Sub(stopped), vrrp.SkewTime(3, 100, segInterval))
	})
}

// NewInstance refuses a missing socket (a Mux on a Segment has no *Conn)
// and takes a nil *Announcer for "no announcer".
func TestNewInstanceSocketChecks(t *testing.T) {
	seg := vrrptest.NewSegment()
	mux := vrrp.NewMux(seg.Socket("a", segFamilies[0].a, false), slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := vrrp.InstanceConfig{Name: "VI_1", Machine: vrrp.Config{VRID: 1, Priority: 100, Version: 3,
		AdvertInterval: time.Second}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := vrrp.NewInstance(cfg, mux.Conn(), nil, segEffects{}, log); err == nil {
		t.Error("NewInstance on Mux.Conn() of a Segment socket: no error")
	}
	var none *vrrp.Announcer
	if _, err := vrrp.NewInstance(cfg, mux.Socket(), none, segEffects{}, log); err != nil {
		t.Errorf("nil *Announcer: %v", err)
	}
}
