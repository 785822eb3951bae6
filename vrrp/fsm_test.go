package vrrp_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/vrrp"
)

var fsmT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fsmAt(d time.Duration) time.Time { return fsmT0.Add(d) }

func fsmCfg(mod func(*vrrp.Config)) vrrp.Config {
	c := vrrp.Config{VRID: 51, Priority: 100, Version: 2, AdvertInterval: time.Second,
		Preempt: true, PrimaryIP: netip.MustParseAddr("10.0.0.2")}
	if mod != nil {
		mod(&c)
	}
	return c
}

type fsmStep struct {
	at time.Duration
	ev vrrp.Event
}

func fsmIP(s string) netip.Addr { return netip.MustParseAddr(s) }

func fsmTr(from, to vrrp.State) vrrp.Transition { return vrrp.Transition{From: from, To: to} }

// fsmStrip blanks transition reasons (checked non-empty) for comparison.
func fsmStrip(t *testing.T, acts []vrrp.Action) []vrrp.Action {
	t.Helper()
	out := make([]vrrp.Action, 0, len(acts))
	for _, a := range acts {
		if x, ok := a.(vrrp.Transition); ok {
			if x.Reason == "" {
				t.Errorf("transition %v>%v without a reason", x.From, x.To)
			}
			x.Reason = ""
			a = x
		}
		out = append(out, a)
	}
	return out
}

// TestMachineStepRules checks each RFC/keepalived rule: a setup sequence, then one
// event whose actions, state and next deadline are checked.
func TestMachineStepRules(t *testing.T) {
	mdi100 := vrrp.MasterDownInterval(2, 100, time.Second) // 3.609375s
	skew100 := vrrp.SkewTime(2, 100, time.Second)          // 609.375ms
	toMaster := []fsmStep{{0, vrrp.Startup{}}, {mdi100, vrrp.Tick{}}}
	cases := []struct {
		name   string
		cfg    vrrp.Config
		setup  []fsmStep
		step   fsmStep
		state  vrrp.State
		acts   []vrrp.Action
		next   time.Time
		master netip.Addr
	}{
		{
			name:  "startup goes backup with the full down timer",
			cfg:   fsmCfg(nil),
			step:  fsmStep{0, vrrp.Startup{}},
			state: vrrp.StateBackup,
			acts:  []vrrp.Action{fsmTr(vrrp.StateInit, vrrp.StateBackup), vrrp.BecomeBackup{}},
			next:  fsmAt(mdi100),
		},
		{
			name:   "owner goes master at once",
			cfg:    fsmCfg(func(c *vrrp.Config) { c.Priority = 255 }),
			step:   fsmStep{0, vrrp.Startup{}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{fsmTr(vrrp.StateInit, vrrp.StateMaster), vrrp.SendAdvert{Priority: 255}, vrrp.BecomeMaster{}},
			next:   fsmAt(time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:  "tick before the down timer does nothing",
			cfg:   fsmCfg(nil),
			setup: []fsmStep{{0, vrrp.Startup{}}},
			step:  fsmStep{mdi100 - time.Microsecond, vrrp.Tick{}},
			state: vrrp.StateBackup,
			next:  fsmAt(mdi100),
		},
		{
			name:   "down timer fires: advert first, then addresses",
			cfg:    fsmCfg(nil),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{mdi100, vrrp.Tick{}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{fsmTr(vrrp.StateBackup, vrrp.StateMaster), vrrp.SendAdvert{Priority: 100}, vrrp.BecomeMaster{}},
			next:   fsmAt(mdi100 + time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "backup receives priority 0: down timer = skew",
			cfg:    fsmCfg(nil),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 0, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + skew100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "backup, preempt, lower priority: ignored, timer keeps running",
			cfg:    fsmCfg(nil),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 99, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "backup, nopreempt, lower priority: timer reset",
			cfg:    fsmCfg(func(c *vrrp.Config) { c.Preempt = false }),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 99, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "backup, equal priority lower address: timer reset (no tie-break in backup)",
			cfg:    fsmCfg(nil),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 100, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "backup, preempt delay running, lower priority: timer reset",
			cfg:    fsmCfg(func(c *vrrp.Config) { c.PreemptDelay = 5 * time.Second }),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 99, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(4*time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name: "backup, preempt delay over, lower priority: ignored",
			cfg:  fsmCfg(func(c *vrrp.Config) { c.PreemptDelay = 2 * time.Second }),
			setup: []fsmStep{{0, vrrp.Startup{}},
				{time.Second, vrrp.AdvertReceived{Priority: 99, Src: fsmIP("10.0.0.1")}}},
			step:   fsmStep{2 * time.Second, vrrp.AdvertReceived{Priority: 99, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "v3 backup learns Master_Adver_Interval",
			cfg:    fsmCfg(func(c *vrrp.Config) { c.Version = 3 }),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 200, Src: fsmIP("10.0.0.1"), Interval: 200 * time.Millisecond}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + vrrp.MasterDownInterval(3, 100, 200*time.Millisecond)),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "v2 backup keeps its own interval",
			cfg:    fsmCfg(nil),
			setup:  []fsmStep{{0, vrrp.Startup{}}},
			step:   fsmStep{time.Second, vrrp.AdvertReceived{Priority: 200, Src: fsmIP("10.0.0.1"), Interval: 3 * time.Second}},
			state:  vrrp.StateBackup,
			next:   fsmAt(time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "master receives higher priority: backup",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 101, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateBackup,
			acts:   []vrrp.Action{fsmTr(vrrp.StateMaster, vrrp.StateBackup), vrrp.BecomeBackup{}},
			next:   fsmAt(4*time.Second + mdi100),
			master: fsmIP("10.0.0.1"),
		},
		{
			name:   "master receives equal priority from a higher address: backup",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 100, Src: fsmIP("10.0.0.3")}},
			state:  vrrp.StateBackup,
			acts:   []vrrp.Action{fsmTr(vrrp.StateMaster, vrrp.StateBackup), vrrp.BecomeBackup{}},
			next:   fsmAt(4*time.Second + mdi100),
			master: fsmIP("10.0.0.3"),
		},
		{
			name:   "master receives equal priority from a lower (v4-mapped) address: answers",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 100, Src: fsmIP("::ffff:10.0.0.1")}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{vrrp.SendAdvert{Priority: 100}, vrrp.MasterRxLowerPrio{Src: fsmIP("10.0.0.1"), Priority: 100}},
			next:   fsmAt(mdi100 + time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "master receives priority 0: advert at once, timer unchanged",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 0, Src: fsmIP("10.0.0.1")}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{vrrp.SendAdvert{Priority: 100}},
			next:   fsmAt(mdi100 + time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "master receives lower priority: keepalived answers at once",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 50, Src: fsmIP("10.0.0.9")}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{vrrp.SendAdvert{Priority: 100}, vrrp.MasterRxLowerPrio{Src: fsmIP("10.0.0.9"), Priority: 50}},
			next:   fsmAt(mdi100 + time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "master receives lower priority, lower_prio_no_advert: report only",
			cfg:    fsmCfg(func(c *vrrp.Config) { c.LowerPrioNoAdvert = true }),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.AdvertReceived{Priority: 50, Src: fsmIP("10.0.0.9")}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{vrrp.MasterRxLowerPrio{Src: fsmIP("10.0.0.9"), Priority: 50}},
			next:   fsmAt(mdi100 + time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "master adver timer: advert and rearm",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{mdi100 + time.Second, vrrp.Tick{}},
			state:  vrrp.StateMaster,
			acts:   []vrrp.Action{vrrp.SendAdvert{Priority: 100}},
			next:   fsmAt(mdi100 + 2*time.Second),
			master: fsmIP("10.0.0.2"),
		},
		{
			name:   "master fault: release with priority 0",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.Fault{On: true}},
			state:  vrrp.StateFault,
			acts:   []vrrp.Action{fsmTr(vrrp.StateMaster, vrrp.StateFault), vrrp.SendAdvert{Priority: 0}, vrrp.BecomeFault{}},
			master: fsmIP("10.0.0.2"),
		},
		{
			name:  "fault ignores adverts",
			cfg:   fsmCfg(nil),
			setup: []fsmStep{{0, vrrp.Startup{}}, {time.Second, vrrp.Fault{On: true}}},
			step:  fsmStep{2 * time.Second, vrrp.AdvertReceived{Priority: 0, Src: fsmIP("10.0.0.1")}},
			state: vrrp.StateFault,
		},
		{
			name:  "fault cleared: backup with full down timer",
			cfg:   fsmCfg(nil),
			setup: []fsmStep{{0, vrrp.Startup{}}, {time.Second, vrrp.Fault{On: true}}},
			step:  fsmStep{5 * time.Second, vrrp.Fault{On: false}},
			state: vrrp.StateBackup,
			acts:  []vrrp.Action{fsmTr(vrrp.StateFault, vrrp.StateBackup), vrrp.BecomeBackup{}},
			next:  fsmAt(5*time.Second + mdi100),
		},
		{
			name:   "master shutdown: priority 0 then release",
			cfg:    fsmCfg(nil),
			setup:  toMaster,
			step:   fsmStep{4 * time.Second, vrrp.Shutdown{}},
			state:  vrrp.StateInit,
			acts:   []vrrp.Action{fsmTr(vrrp.StateMaster, vrrp.StateInit), vrrp.SendAdvert{Priority: 0}, vrrp.BecomeInit{}},
			master: fsmIP("10.0.0.2"),
		},
		{
			name:  "init ignores adverts and ticks",
			cfg:   fsmCfg(nil),
			step:  fsmStep{time.Second, vrrp.AdvertReceived{Priority: 0, Src: fsmIP("10.0.0.1")}},
			state: vrrp.StateInit,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			m := vrrp.New(tc.cfg)
			for _, s := range tc.setup {
				m, _ = m.Step(s.ev, fsmAt(s.at))
			}
			m, acts := m.Step(tc.step.ev, fsmAt(tc.step.at))
			if got := fsmStrip(t, acts); !reflect.DeepEqual(got, tc.acts) && (len(got) != 0 || len(tc.acts) != 0) {
				t.Errorf("actions:\n got %#v\nwant %#v", got, tc.acts)
			}
			if m.State() != tc.state {
				t.Errorf("state %v, want %v", m.State(), tc.state)
			}
			if got := m.NextDeadline(); !got.Equal(tc.next) {
				t.Errorf("next deadline %v, want %v", got.Sub(fsmT0), tc.next.Sub(fsmT0))
			}
			if got, _ := m.Master(); got != tc.master {
				t.Errorf("master %v, want %v", got, tc.master)
			}
		})
	}
}

func TestMachineStepIsPure(t *testing.T) {
	m := vrrp.New(fsmCfg(nil))
	m1, _ := m.Step(vrrp.Startup{}, fsmT0)
	if m.State() != vrrp.StateInit || !m.NextDeadline().IsZero() {
		t.Fatalf("Step changed its receiver: %v", m.State())
	}
	// the same inputs give the same outputs
	a, actsA := m1.Step(vrrp.Tick{}, fsmAt(time.Hour))
	b, actsB := m1.Step(vrrp.Tick{}, fsmAt(time.Hour))
	if a != b || !reflect.DeepEqual(actsA, actsB) {
		t.Fatalf("Step is not deterministic: %v %v", actsA, actsB)
	}
	if m1.State() != vrrp.StateBackup || a.State() != vrrp.StateMaster {
		t.Fatalf("states %v %v", m1.State(), a.State())
	}
}

func TestMachineSkewTime(t *testing.T) {
	cases := []struct {
		version uint8
		prio    uint8
		iv      time.Duration
		skew    time.Duration
	}{
		{2, 100, time.Second, 609375 * time.Microsecond},
		{2, 100, 5 * time.Second, 609375 * time.Microsecond}, // v2 skew ignores the interval
		{2, 255, time.Second, 3906 * time.Microsecond},
		{2, 254, time.Second, 7812 * time.Microsecond},
		{2, 1, time.Second, 996093 * time.Microsecond},
		{3, 100, time.Second, 609375 * time.Microsecond},
		{3, 100, 100 * time.Millisecond, 60937 * time.Microsecond},
		{3, 200, 10 * time.Millisecond, 2187 * time.Microsecond},
		{3, 1, 40950 * time.Millisecond, 40790039 * time.Microsecond},
		{3, 100, 105 * time.Millisecond, 60937 * time.Microsecond}, // whole centiseconds
	}
	for _, c := range cases {
		if got := vrrp.SkewTime(c.version, c.prio, c.iv); got != c.skew {
			t.Errorf("SkewTime(v%d, %d, %v) = %v, want %v", c.version, c.prio, c.iv, got, c.skew)
		}
		if got, want := vrrp.MasterDownInterval(c.version, c.prio, c.iv), 3*c.iv+c.skew; got != want {
			t.Errorf("MasterDownInterval(v%d, %d, %v) = %v, want %v", c.version, c.prio, c.iv, got, want)
		}
	}
	// higher priority always has the shorter skew: the best backup wins
	for _, v := range []uint8{2, 3} {
		for p := 1; p < 255; p++ {
			if vrrp.SkewTime(v, uint8(p), time.Second) <= vrrp.SkewTime(v, uint8(p+1), time.Second) {
				t.Fatalf("v%d: skew(%d) <= skew(%d)", v, p, p+1)
			}
		}
	}
}

func TestMachineConfigValidate(t *testing.T) {
	ok := []vrrp.Config{
		fsmCfg(nil),
		fsmCfg(func(c *vrrp.Config) { c.Version = 3; c.AdvertInterval = 30 * time.Millisecond }),
		fsmCfg(func(c *vrrp.Config) { c.Version = 3; c.PrimaryIP = fsmIP("fe80::1") }),
		fsmCfg(func(c *vrrp.Config) { c.Priority = 255; c.InitialState = vrrp.StateMaster }),
		fsmCfg(func(c *vrrp.Config) { c.PreemptDelay = vrrp.MaxPreemptDelay }),
	}
	for i, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("ok[%d]: %v", i, err)
		}
	}
	bad := map[string]vrrp.Config{
		"vrid 0":          fsmCfg(func(c *vrrp.Config) { c.VRID = 0 }),
		"priority 0":      fsmCfg(func(c *vrrp.Config) { c.Priority = 0 }),
		"version 4":       fsmCfg(func(c *vrrp.Config) { c.Version = 4 }),
		"v2 1.5s":         fsmCfg(func(c *vrrp.Config) { c.AdvertInterval = 1500 * time.Millisecond }),
		"v2 0":            fsmCfg(func(c *vrrp.Config) { c.AdvertInterval = 0 }),
		"v2 256s":         fsmCfg(func(c *vrrp.Config) { c.AdvertInterval = 256 * time.Second }),
		"v2 ipv6":         fsmCfg(func(c *vrrp.Config) { c.PrimaryIP = fsmIP("fe80::1") }),
		"v3 5ms":          fsmCfg(func(c *vrrp.Config) { c.Version = 3; c.AdvertInterval = 5 * time.Millisecond }),
		"v3 15ms":         fsmCfg(func(c *vrrp.Config) { c.Version = 3; c.AdvertInterval = 15 * time.Millisecond }),
		"v3 41s":          fsmCfg(func(c *vrrp.Config) { c.Version = 3; c.AdvertInterval = 41 * time.Second }),
		"delay negative":  fsmCfg(func(c *vrrp.Config) { c.PreemptDelay = -time.Second }),
		"delay too long":  fsmCfg(func(c *vrrp.Config) { c.PreemptDelay = vrrp.MaxPreemptDelay + time.Second }),
		"no primary":      fsmCfg(func(c *vrrp.Config) { c.PrimaryIP = netip.Addr{} }),
		"state fault":     fsmCfg(func(c *vrrp.Config) { c.InitialState = vrrp.StateFault }),
		"state undefined": fsmCfg(func(c *vrrp.Config) { c.InitialState = 9 }),
	}
	for name, c := range bad {
		err := c.Validate()
		if !errors.Is(err, vrrp.ErrMachineConfig) {
			t.Errorf("%s: Validate() = %v, want ErrMachineConfig", name, err)
		}
	}
}

func TestMachineConfigNormalize(t *testing.T) {
	cases := []struct {
		name  string
		in    vrrp.Config
		out   vrrp.Config
		warns int
	}{
		{"plain", fsmCfg(nil), fsmCfg(func(c *vrrp.Config) { c.InitialState = vrrp.StateBackup }), 0},
		{"owner nopreempt",
			fsmCfg(func(c *vrrp.Config) { c.Priority = 255; c.Preempt = false }),
			fsmCfg(func(c *vrrp.Config) { c.Priority = 255; c.InitialState = vrrp.StateMaster }), 1},
		{"master nopreempt delay",
			fsmCfg(func(c *vrrp.Config) {
				c.InitialState = vrrp.StateMaster
				c.Preempt = false
				c.PreemptDelay = time.Second
			}),
			fsmCfg(func(c *vrrp.Config) { c.InitialState = vrrp.StateMaster }), 2},
		{"nopreempt delay",
			fsmCfg(func(c *vrrp.Config) { c.Preempt = false; c.PreemptDelay = time.Second }),
			fsmCfg(func(c *vrrp.Config) { c.Preempt = false; c.InitialState = vrrp.StateBackup }), 1},
		{"mapped primary",
			fsmCfg(func(c *vrrp.Config) { c.PrimaryIP = fsmIP("::ffff:10.0.0.2") }),
			fsmCfg(func(c *vrrp.Config) { c.InitialState = vrrp.StateBackup }), 0},
	}
	for _, tc := range cases {
		got, warns := tc.in.Normalize()
		if got != tc.out || len(warns) != tc.warns {
			t.Errorf("%s: Normalize() = %+v %q, want %+v with %d warnings", tc.name, got, warns, tc.out, tc.warns)
		}
		if vrrp.New(tc.in).Config() != tc.out {
			t.Errorf("%s: New does not normalize", tc.name)
		}
	}
}

// --- property test: machines on a simulated wire -------------------------

type fsmWireMsg struct {
	at   time.Time
	to   int
	adv  vrrp.AdvertReceived
	seqn int
}

type fsmWireNode struct {
	cfg vrrp.Config
	m   vrrp.Machine
	up  bool
}

type fsmWire struct {
	t      *testing.T
	rng    *rand.Rand
	now    time.Time
	nodes  []*fsmWireNode
	msgs   []fsmWireMsg
	seq    int
	maxLat time.Duration
	log    []string

	linkLast map[[2]int]time.Time // arrival of the last message per (from, to)

	dualSince time.Time // zero unless more than one up node is master
	maxDual   time.Duration
	stats     fsmStats
}

func (w *fsmWire) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%12v ", w.now.Sub(fsmT0))+fmt.Sprintf(format, args...))
}

func (w *fsmWire) step(i int, ev vrrp.Event) {
	n := w.nodes[i]
	var acts []vrrp.Action
	n.m, acts = n.m.Step(ev, w.now)
	for _, a := range acts {
		switch a := a.(type) {
		case vrrp.Transition:
			w.stats.transitions++
			w.logf("node %d (prio %d): %v>%v: %s", i, n.m.Priority(), a.From, a.To, a.Reason)
		case vrrp.SendAdvert:
			for j := range w.nodes {
				if j == i {
					continue
				}
				w.seq++
				// random latency, but FIFO per link as on one segment
				at := w.now.Add(time.Duration(w.rng.Int64N(int64(w.maxLat) + 1)))
				if last := w.linkLast[[2]int{i, j}]; at.Before(last) {
					at = last
				}
				w.linkLast[[2]int{i, j}] = at
				w.msgs = append(w.msgs, fsmWireMsg{at: at, to: j, seqn: w.seq,
					adv: vrrp.AdvertReceived{Priority: a.Priority, Src: n.cfg.PrimaryIP, Interval: n.cfg.AdvertInterval}})
			}
		}
	}
	w.checkDual()
}

func (w *fsmWire) masters() []int {
	var ms []int
	for i, n := range w.nodes {
		if n.up && n.m.State() == vrrp.StateMaster {
			ms = append(ms, i)
		}
	}
	return ms
}

func (w *fsmWire) checkDual() {
	dual := len(w.masters()) > 1
	switch {
	case dual && w.dualSince.IsZero():
		w.dualSince = w.now
		w.stats.duals++
	case !dual && !w.dualSince.IsZero():
		w.maxDual = max(w.maxDual, w.now.Sub(w.dualSince))
		w.dualSince = time.Time{}
	}
}

// run advances the fake clock to end, delivering adverts and ticks in time
// order.
func (w *fsmWire) run(end time.Time) {
	for range 10_000_000 {
		next, kind, idx := end, -1, -1
		for k, msg := range w.msgs {
			if msg.at.Before(next) || (kind < 0 && msg.at.Equal(next)) {
				next, kind, idx = msg.at, 0, k
			} else if msg.at.Equal(next) && kind == 0 && msg.seqn < w.msgs[idx].seqn {
				idx = k
			}
		}
		for i, n := range w.nodes {
			if d := n.m.NextDeadline(); n.up && !d.IsZero() && d.Before(next) {
				next, kind, idx = d, 1, i
			}
		}
		if kind < 0 {
			w.now = end
			return
		}
		w.now = next
		if kind == 0 {
			msg := w.msgs[idx]
			w.msgs = append(w.msgs[:idx], w.msgs[idx+1:]...)
			if w.nodes[msg.to].up {
				w.step(msg.to, msg.adv)
			}
		} else {
			w.step(idx, vrrp.Tick{})
		}
	}
	w.t.Fatal("simulation did not reach its end")
}

func (w *fsmWire) fail(seed uint64, format string, args ...any) {
	w.t.Helper()
	var b strings.Builder
	for i, n := range w.nodes {
		fmt.Fprintf(&b, "node %d: %+v up=%v state=%v\n", i, n.cfg, n.up, n.m.State())
	}
	w.t.Fatalf("seed %d: %s\n%s%s", seed, fmt.Sprintf(format, args...), b.String(), strings.Join(w.log, "\n"))
}

// TestMachineConvergence wires two or three machines together under a fake clock
// with random latency, priorities, versions and intervals, makes the master
// leave (gracefully or by crashing) again and again, and checks that the
// remaining machines have exactly one master within Master_Down_Interval
// (3 intervals + skew of the best remaining node, plus delivery slack), and
// that after a settle time there is exactly one master again.
func TestMachineConvergence(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	var total fsmStats
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		st := fsmConverge(t, seed)
		total.transitions += st.transitions
		total.leaves += st.leaves
		total.duals += st.duals
	}
	t.Logf("%d seeds: %d leaves, %d transitions, %d dual-master overlaps (each within the wire latency)",
		seeds, total.leaves, total.transitions, total.duals)
	if total.leaves != 4*seeds || total.transitions < 2*total.leaves {
		t.Fatalf("the simulation did not exercise failovers: %+v", total)
	}
}

type fsmStats struct{ transitions, leaves, duals int }

func fsmConverge(t *testing.T, seed uint64) fsmStats {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	version := uint8(2 + rng.IntN(2))
	iv := time.Second
	if version == 3 {
		iv = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, time.Second}[rng.IntN(3)]
	}
	w := &fsmWire{t: t, rng: rng, now: fsmT0, maxLat: time.Duration(rng.Int64N(int64(time.Millisecond)) + 1),
		linkLast: map[[2]int]time.Time{}}
	count := 2 + rng.IntN(2)
	allPreempt := true
	var delay time.Duration
	if rng.IntN(3) == 0 {
		delay = time.Duration(1+rng.IntN(3)) * iv
	}
	for i := range count {
		cfg := vrrp.Config{VRID: 7, Version: version, AdvertInterval: iv,
			Priority:     uint8(1 + rng.IntN(254)),
			Preempt:      rng.IntN(4) != 0,
			PreemptDelay: delay,
			PrimaryIP:    netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}
		if rng.IntN(5) == 0 && i > 0 {
			cfg.Priority = w.nodes[0].cfg.Priority // equal priorities: tie-break by address
		}
		if rng.IntN(8) == 0 {
			cfg.InitialState = vrrp.StateMaster
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		cfg, _ = cfg.Normalize()
		allPreempt = allPreempt && cfg.Preempt
		n := &fsmWireNode{cfg: cfg, m: vrrp.New(cfg), up: true}
		w.nodes = append(w.nodes, n)
	}
	// staggered starts
	for i := range w.nodes {
		w.run(w.now.Add(time.Duration(rng.Int64N(int64(iv)))))
		w.step(i, vrrp.Startup{})
	}
	settle := func() time.Duration {
		return delay + 2*vrrp.MasterDownInterval(version, 1, iv) + 2*iv
	}
	w.run(w.now.Add(settle()))

	for cycle := range 4 {
		ms := w.masters()
		if len(ms) != 1 {
			w.fail(seed, "cycle %d: %d masters after settling: %v", cycle, len(ms), ms)
		}
		if distinct := fsmDistinctPrio(w); allPreempt && distinct {
			best := fsmBest(w)
			if ms[0] != best {
				w.fail(seed, "cycle %d: master is node %d, want the best node %d (all preempt)", cycle, ms[0], best)
			}
		}
		// the master leaves at a random point of its advert cycle
		w.run(w.now.Add(time.Duration(rng.Int64N(int64(iv)))))
		leaver := ms[0]
		graceful := rng.IntN(2) == 0
		w.logf("node %d leaves (graceful=%v)", leaver, graceful)
		w.stats.leaves++
		if graceful {
			w.step(leaver, vrrp.Shutdown{})
		}
		w.nodes[leaver].up = false
		w.checkDual()
		left := w.now

		// graceful: the priority 0 advert leaves only the skew to wait
		best := fsmBest(w)
		bound := vrrp.MasterDownInterval(version, w.nodes[best].m.Priority(), iv)
		if graceful {
			bound = vrrp.SkewTime(version, w.nodes[best].m.Priority(), iv)
		}
		bound += 2*w.maxLat + time.Microsecond
		w.run(left.Add(bound))
		if ms := w.masters(); len(ms) != 1 {
			w.fail(seed, "cycle %d: %d masters %v %v after node %d left (bound %v)", cycle, len(ms), ms, w.now.Sub(left), leaver, bound)
		}

		// it comes back later with a fresh machine
		w.run(w.now.Add(time.Duration(rng.Int64N(int64(3 * iv)))))
		n := w.nodes[leaver]
		n.m, n.up = vrrp.New(n.cfg), true
		w.logf("node %d restarts", leaver)
		w.step(leaver, vrrp.Startup{})
		w.run(w.now.Add(settle()))
	}
	if !w.dualSince.IsZero() {
		w.fail(seed, "still dual master at the end")
	}
	// two masters may overlap only until the first advert arrives
	if w.maxDual > w.maxLat {
		w.fail(seed, "two masters for %v, more than the wire latency %v", w.maxDual, w.maxLat)
	}
	return w.stats
}

// fsmBest is the up node that should win: highest priority, then address.
func fsmBest(w *fsmWire) int {
	best := -1
	for i, n := range w.nodes {
		if !n.up {
			continue
		}
		if best < 0 || n.m.Priority() > w.nodes[best].m.Priority() ||
			(n.m.Priority() == w.nodes[best].m.Priority() && n.cfg.PrimaryIP.Compare(w.nodes[best].cfg.PrimaryIP) > 0) {
			best = i
		}
	}
	return best
}

func fsmDistinctPrio(w *fsmWire) bool {
	seen := map[uint8]bool{}
	for _, n := range w.nodes {
		if n.up {
			if seen[n.m.Priority()] {
				return false
			}
			seen[n.m.Priority()] = true
		}
	}
	return true
}

func TestClaimMakesBackupMaster(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := vrrp.New(vrrp.Config{VRID: 1, Priority: 100, Version: 3, AdvertInterval: 100 * time.Millisecond, Preempt: true,
		PrimaryIP: netip.MustParseAddr("10.0.0.2")})
	m, _ = m.Step(vrrp.Startup{}, t0)
	if m.State() != vrrp.StateBackup {
		t.Fatalf("state %v after startup", m.State())
	}
	m, acts := m.Step(vrrp.Claim{}, t0.Add(10*time.Millisecond))
	if m.State() != vrrp.StateMaster {
		t.Fatalf("Claim left state %v, want master", m.State())
	}
	var sent, became bool
	for _, a := range acts {
		switch a.(type) {
		case vrrp.SendAdvert:
			sent = true
		case vrrp.BecomeMaster:
			became = true
		}
	}
	if !sent || !became {
		t.Fatalf("Claim actions %v: want an advert and BecomeMaster", acts)
	}
	// Ignored when not backup.
	if m2, acts := m.Step(vrrp.Claim{}, t0.Add(20*time.Millisecond)); m2.State() != vrrp.StateMaster || len(acts) != 0 {
		t.Fatalf("Claim as master: %v %v", m2.State(), acts)
	}
}

// MasterHeard: a Backup hears another router as master while its adverts
// keep the Master_Down timer running; a release (priority 0) or the timer
// running out ends it.
func TestMachineMasterHeard(t *testing.T) {
	m := vrrp.New(fsmCfg(nil))
	m, _ = m.Step(vrrp.Startup{}, fsmT0)
	if m.MasterHeard(fsmT0) {
		t.Fatal("heard a master before any advert")
	}
	m, _ = m.Step(vrrp.AdvertReceived{Priority: 120, Src: fsmIP("10.0.0.1")}, fsmAt(time.Second))
	if !m.MasterHeard(fsmAt(time.Second + 100*time.Millisecond)) {
		t.Fatal("a priority-120 master just heard is not heard")
	}
	if m.MasterHeard(m.NextDeadline()) {
		t.Fatal("still heard when the Master_Down timer runs out")
	}
	r, _ := m.Step(vrrp.AdvertReceived{Priority: 0, Src: fsmIP("10.0.0.1")}, fsmAt(1500*time.Millisecond))
	if r.MasterHeard(fsmAt(1500 * time.Millisecond)) {
		t.Fatal("a released master (priority 0) is still heard")
	}
	if r.State() != vrrp.StateBackup {
		t.Fatalf("state %v after a release", r.State())
	}
}
