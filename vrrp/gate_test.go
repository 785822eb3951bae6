package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Unit tests of what a lease-gated Instance puts on the wire: adverts and
// announcements ask the Gate at send time; a failed announcement is
// retried. No sockets: the Instance runs on a Conn without one, adverts are
// collected from the scheduler's Outbox and from its direct write, and
// time is synctest's.

// fakeGate is a node's lease state as the gate sees it: a session live
// until session, ownership live until owned (zero: not owner).
type fakeGate struct {
	mu             sync.Mutex
	session, owned time.Time
}

func (g *fakeGate) set(session, owned time.Time) {
	g.mu.Lock()
	g.session, g.owned = session, owned
	g.mu.Unlock()
}

func (g *fakeGate) MayAdvertise(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.session)
}

func (g *fakeGate) MayAnnounce(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.owned)
}

// fakeAnnouncer records every Announce call; the first fail calls fail
// with ENETDOWN (or every call while failAll).
type fakeAnnouncer struct {
	start   time.Time
	fail    int
	failAll bool
	calls   []time.Duration // offsets of every call
	sent    []time.Duration // offsets of the calls that succeeded
}

func (a *fakeAnnouncer) Announce(vips []netip.Addr) error {
	at := time.Since(a.start)
	a.calls = append(a.calls, at)
	if a.failAll || len(a.calls) <= a.fail {
		return &net.OpError{Op: "sendto", Net: "arp", Err: syscall.ENETDOWN}
	}
	a.sent = append(a.sent, at)
	return nil
}

type noEffects struct{}

func (noEffects) Up(context.Context) error   { return nil }
func (noEffects) Down(context.Context) error { return nil }

// harness drives one Instance as the Mux would: the scheduler's ticks at
// its deadlines with the adverts into an Outbox, plus the adverts it
// writes directly (answers, claims, priority 0 on fault).
type harness struct {
	t     *testing.T
	in    *Instance
	out   *Outbox
	start time.Time
	// priorities of every advert put on the wire, in order
	prios []uint8
}

var (
	testSrc = netip.MustParseAddr("10.0.0.1")
	testVIP = netip.MustParseAddr("10.0.0.100")
)

func newHarness(t *testing.T, cfg InstanceConfig, ann AddrAnnouncer, gate Gate) *harness {
	t.Helper()
	conn := &Conn{ifi: &net.Interface{Name: "test0", Index: 1}, src: testSrc}
	if cfg.Name == "" {
		cfg.Name = "VI_1"
	}
	cfg.Machine.VRID, cfg.Machine.Version = 51, 3
	if cfg.Machine.AdvertInterval == 0 {
		cfg.Machine.AdvertInterval = 100 * time.Millisecond
	}
	cfg.Expect = Expect{Version: 3, VRID: 51, Interval: cfg.Machine.AdvertInterval}
	cfg.VIPs = []netip.Addr{testVIP}
	var eff Effects = noEffects{}
	in, err := NewInstance(cfg, conn, ann, eff, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if gate != nil {
		in.SetGate(gate)
	}
	h := &harness{t: t, in: in, out: conn.NewOutbox(), start: time.Now()}
	in.write = func(b []byte, src, dst netip.Addr) error {
		h.record(b, dst)
		return nil
	}
	return h
}

func (h *harness) record(b []byte, dst netip.Addr) {
	var a Advert
	if r := Decode(b, testSrc, dst, &a); r != DropNone {
		h.t.Fatalf("advert does not decode: %v", r)
	}
	h.prios = append(h.prios, a.Priority)
}

// step delivers ev as Inject would, at the fake now.
func (h *harness) step(ev Event) {
	h.in.mu.Lock()
	h.in.stepLocked(ev, time.Now(), nil)
	h.in.mu.Unlock()
}

// run delivers every timer due until the offset until (fake time moves).
func (h *harness) run(until time.Duration) {
	end := h.start.Add(until)
	for {
		h.in.mu.Lock()
		d := h.in.deadlineLocked()
		h.in.mu.Unlock()
		if d.IsZero() || d.After(end) {
			break
		}
		time.Sleep(time.Until(d))
		h.tick()
	}
	time.Sleep(time.Until(end))
}

// tick is one pass of the scheduler at the fake now.
func (h *harness) tick() {
	var owners []*Instance
	h.in.mu.Lock()
	h.in.tickLocked(time.Now(), h.out, &owners)
	h.in.mu.Unlock()
	for i := range h.out.pkts {
		p := h.out.pkts[i]
		h.record(h.out.data[p.off:p.off+p.n], p.dst)
	}
	h.out.Reset()
}

func (h *harness) at() time.Duration { return time.Since(h.start) }

func nonZero(prios []uint8) int {
	n := 0
	for _, p := range prios {
		if p != PriorityRelease {
			n++
		}
	}
	return n
}

// The field sequence of issue 15, seen from the frozen owner: it was VRRP
// master at priority 120 and owner; frozen 4.2 s, past its local deadline;
// on resume its timers are late and it hears the new owner's adverts
// (priority 100). Until its session is live again it sends no advert with
// a non-zero priority, claims nothing, answers nothing; its fault (the
// session's loss) still sends priority 0.
func TestGateWithholdsAdvertsOfResumedMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &fakeGate{}
		h := newHarness(t, InstanceConfig{LeaseGated: true, Machine: Config{Priority: 120, Preempt: true,
			InitialState: StateMaster}}, nil, gate)
		deadline := h.start.Add(time.Second)
		gate.set(deadline, deadline)
		h.step(Startup{})
		h.run(900 * time.Millisecond)
		if h.in.m.State() != StateMaster {
			t.Fatalf("state %v, want master", h.in.m.State())
		}
		before := nonZero(h.prios)
		if before < 5 {
			t.Fatalf("%d adverts while the session was live, want ~8", before)
		}
		// Frozen: nothing runs for 4.2 s; the deadline passes.
		time.Sleep(4200 * time.Millisecond)
		h.tick()                                                                    // the late advert timer
		h.step(AdvertReceived{Priority: 100, Src: netip.MustParseAddr("10.0.0.2")}) // the new owner
		h.in.Inject(Claim{})                                                        // a claim from a stale grant
		h.run(h.at() + 500*time.Millisecond)                                        // more late timers
		h.step(AdvertReceived{Priority: 100, Src: netip.MustParseAddr("10.0.0.2")}) // and again
		if got := nonZero(h.prios) - before; got != 0 {
			t.Fatalf("%d adverts with a non-zero priority after the deadline passed, want 0 (%v)", got, h.prios[before:])
		}
		if w := h.in.Status().AdvertsWithheld; w < 6 {
			t.Errorf("adverts withheld %d, want >= 6 (one late tick, two answers, a claim, five intervals)", w)
		}
		// The session is found lost: fault, priority 0 (never gated).
		n := len(h.prios)
		h.in.SetFault("quorum", true)
		if len(h.prios) != n+1 || h.prios[n] != PriorityRelease {
			t.Fatalf("on fault sent %v, want one priority 0 advert", h.prios[n:])
		}
		// A new session: VRRP comes back through backup and, once master
		// again, advertises.
		gate.set(time.Now().Add(time.Hour), time.Time{})
		h.in.SetFault("quorum", false)
		h.run(h.at() + 2*time.Second)
		if h.in.m.State() != StateMaster || nonZero(h.prios[n:]) == 0 {
			t.Fatalf("with a live session: state %v, adverts %v; want master advertising", h.in.m.State(), h.prios[n:])
		}
	})
}

// Without a gate (quorum none) nothing is withheld.
func TestNoGateAdvertises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, InstanceConfig{Machine: Config{Priority: 120, Preempt: true, InitialState: StateMaster}}, nil, nil)
		h.step(Startup{})
		h.run(time.Second)
		if nonZero(h.prios) < 8 || h.in.Status().AdvertsWithheld != 0 {
			t.Fatalf("adverts %v, withheld %d", h.prios, h.in.Status().AdvertsWithheld)
		}
	})
}

// master brings h's instance to VRRP master (initial state master).
func (h *harness) master() {
	h.t.Helper()
	h.step(Startup{})
	h.run(h.at() + 200*time.Millisecond)
	if h.in.m.State() != StateMaster {
		h.t.Fatalf("state %v, want master", h.in.m.State())
	}
}

// Issue 8: every burst asks the gate. A lease-driven demote (the deadline
// guard) leaves VRRP master; the second burst and the refreshes must not go
// out for a VIP the node no longer holds.
func TestGARPStopsWhenNoLongerOwner(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(g *fakeGate, now time.Time)
	}{
		{"demoted", func(g *fakeGate, now time.Time) { g.set(now.Add(time.Hour), time.Time{}) }},
		{"frozen past the deadline", func(g *fakeGate, now time.Time) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate := &fakeGate{}
				ann := &fakeAnnouncer{start: time.Now()}
				h := newHarness(t, InstanceConfig{LeaseGated: true, Machine: Config{Priority: 120, Preempt: true,
					InitialState: StateMaster}, GarpRepeat: 3, GarpDelay: 5 * time.Second, GarpRefresh: 10 * time.Second}, ann, gate)
				gate.set(h.start.Add(3*time.Second), h.start.Add(3*time.Second))
				h.master()
				h.in.Announce() // the node became owner
				if len(ann.sent) != 3 {
					t.Fatalf("first burst: %d announcements, want 3", len(ann.sent))
				}
				time.Sleep(time.Second)
				tc.close(gate, time.Now())
				h.run(30 * time.Second)
				if len(ann.calls) != 3 {
					t.Fatalf("announcements at %v after the node stopped owning, want the first burst only", ann.calls)
				}
				h.in.mu.Lock()
				at := h.in.garpAt
				h.in.mu.Unlock()
				if !at.IsZero() {
					t.Errorf("the schedule still runs (next at %v)", at.Sub(h.start))
				}
				st := h.in.Status()
				if st.GARPsSent != 3 || st.GARPsWithheld != 1 {
					t.Errorf("status garps sent %d withheld %d, want 3 and 1", st.GARPsSent, st.GARPsWithheld)
				}
			})
		})
	}
}

// The owner's whole schedule goes out while its lease lives: the first
// burst, the second after garp_master_delay, the refreshes.
func TestGARPScheduleWhileOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &fakeGate{}
		ann := &fakeAnnouncer{start: time.Now()}
		h := newHarness(t, InstanceConfig{LeaseGated: true, Machine: Config{Priority: 120, Preempt: true,
			InitialState: StateMaster}, GarpRepeat: 2, GarpDelay: 5 * time.Second, GarpRefresh: 10 * time.Second}, ann, gate)
		gate.set(h.start.Add(time.Hour), h.start.Add(time.Hour))
		h.master()
		h.in.Announce()
		h.run(26 * time.Second)
		// at ~0.2s: 2; ~5.2s: 2; ~15.2s: 2; ~25.2s: 2
		if len(ann.sent) != 8 {
			t.Fatalf("announcements at %v, want 8 (4 bursts of 2)", ann.sent)
		}
		if d := ann.sent[2] - ann.sent[0]; d != 5*time.Second {
			t.Errorf("second burst %v after the first, want 5s", d)
		}
	})
}

// Issue 8: after a link flap the first frames fail (network is down). The
// burst goes on after a short backoff (10 ms doubling) until the frame is
// sent, then the rest of the burst follows; with garp_master_delay 0 this
// is the only burst there is.
func TestGARPRetriesFailedSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &fakeGate{}
		ann := &fakeAnnouncer{start: time.Now(), fail: 3}
		h := newHarness(t, InstanceConfig{LeaseGated: true, Machine: Config{Priority: 120, Preempt: true,
			InitialState: StateMaster}, GarpRepeat: 3}, ann, gate)
		gate.set(h.start.Add(time.Hour), h.start.Add(time.Hour))
		h.master()
		t0 := h.at()
		h.in.Announce()
		h.run(h.at() + 5*time.Second)
		var got []time.Duration
		for _, c := range ann.calls {
			got = append(got, c-t0)
		}
		// failed at 0, 10ms, 30ms; sent at 70ms, then the two other frames
		want := []time.Duration{0, 10 * time.Millisecond, 30 * time.Millisecond, 70 * time.Millisecond,
			70 * time.Millisecond, 70 * time.Millisecond}
		if len(got) != len(want) {
			t.Fatalf("announce calls at %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("announce calls at %v, want %v", got, want)
			}
		}
		st := h.in.Status()
		if st.GARPsSent != 3 || st.GARPFailures != 3 {
			t.Errorf("status sent %d failures %d, want 3 and 3", st.GARPsSent, st.GARPFailures)
		}
	})
}

// Retrying stops when the node may no longer announce; the backoff is
// capped.
func TestGARPRetryEndsWithOwnership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &fakeGate{}
		ann := &fakeAnnouncer{start: time.Now(), failAll: true}
		h := newHarness(t, InstanceConfig{LeaseGated: true, Machine: Config{Priority: 120, Preempt: true,
			InitialState: StateMaster}, GarpRepeat: 1, GarpDelay: 5 * time.Second}, ann, gate)
		h.master()
		t0 := h.at()
		gate.set(h.start.Add(time.Hour), h.start.Add(t0+3*time.Second))
		h.in.Announce()
		h.run(h.at() + 20*time.Second)
		var last time.Duration
		for i, c := range ann.calls {
			c -= t0
			if c >= 3*time.Second {
				t.Fatalf("announce call %d at %v, after ownership ended at 3s", i, c)
			}
			if i > 0 && c-last > garpRetryMax {
				t.Fatalf("gap %v between retries, want <= %v", c-last, garpRetryMax)
			}
			last = c
		}
		if len(ann.calls) < 10 || last < 3*time.Second-garpRetryMax {
			t.Fatalf("%d calls, last at %v: want retries until ~3s", len(ann.calls), last)
		}
		h.in.mu.Lock()
		at := h.in.garpAt
		h.in.mu.Unlock()
		if !at.IsZero() {
			t.Errorf("the schedule still runs")
		}
	})
}

// A frame that fails while the instance leaves master is not retried.
func TestGARPRetryEndsWithMastership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ann := &fakeAnnouncer{start: time.Now(), failAll: true}
		h := newHarness(t, InstanceConfig{Machine: Config{Priority: 120, Preempt: true, InitialState: StateMaster},
			GarpRepeat: 1}, ann, nil)
		h.master()
		h.in.Announce()
		h.run(h.at() + 100*time.Millisecond)
		n := len(ann.calls)
		h.step(AdvertReceived{Priority: 200, Src: netip.MustParseAddr("10.0.0.2")})
		h.run(h.at() + 5*time.Second)
		if len(ann.calls) != n {
			t.Fatalf("%d announce calls after leaving master", len(ann.calls)-n)
		}
		if h.in.Status().LastError == "" {
			t.Errorf("the failure is not recorded in the status")
		}
	})
}
