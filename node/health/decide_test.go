package health

import (
	"slices"
	"strings"
	"testing"
)

// seq runs a sequence of outcomes ('+' success, '-' failure) and returns
// the state after each, as a string of 'U' (up), 'D' (down), '?' (unknown).
func seq(s scriptState, outcomes string) string {
	var b strings.Builder
	for _, c := range outcomes {
		s.Observe(c == '+')
		switch s.State() {
		case Up:
			b.WriteByte('U')
		case Down:
			b.WriteByte('D')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func TestScriptStateRiseFall(t *testing.T) {
	cases := []struct {
		name       string
		rise, fall int
		initFail   bool
		outcomes   string
		want       string
	}{
		{"defaults: each result decides", 1, 1, false, "+-+-", "UDUD"},
		{"first success is enough without init_fail", 3, 2, false, "+", "U"},
		{"first failure is enough without init_fail", 3, 2, false, "-", "D"},
		{"fall 3 needs 3 consecutive failures", 1, 3, false, "+---", "UUUD"},
		{"a success restarts the fall count", 1, 3, false, "+--+--", "UUUUUU"},
		{"rise 3 needs 3 consecutive successes from down", 3, 1, false, "-+++", "DDDU"},
		{"a failure restarts the rise count", 3, 1, false, "-++-+++", "DDDDDDU"},
		{"init_fail starts down and needs rise", 2, 2, true, "++", "DU"},
		{"init_fail rise 1", 1, 1, true, "+", "U"},
		{"init_fail then failures stay down", 2, 2, true, "--+-++", "DDDDDU"},
		{"rise 2 fall 2 round trip", 2, 2, false, "+--++", "UUDDU"},
		{"partial failures then success refill", 2, 3, false, "+--+--", "UUUUUU"},
		{"zero rise/fall act as 1", 0, 0, false, "+-", "UD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newScriptState(c.rise, c.fall, c.initFail)
			if got := seq(s, c.outcomes); got != c.want {
				t.Errorf("rise %d fall %d init_fail %v %q: got %q, want %q", c.rise, c.fall, c.initFail, c.outcomes, got, c.want)
			}
		})
	}
}

func TestScriptStateInitial(t *testing.T) {
	if st := newScriptState(2, 2, false).State(); st != Unknown {
		t.Errorf("without init_fail: %v, want unknown", st)
	}
	if st := newScriptState(2, 2, true).State(); st != Down {
		t.Errorf("with init_fail: %v, want down", st)
	}
}

func TestScriptStateObserveReportsChanges(t *testing.T) {
	s := newScriptState(1, 2, false)
	steps := []struct {
		ok      bool
		changed bool
	}{
		{true, true},   // unknown -> up
		{true, false},  // up
		{false, false}, // 1 of 2 failures
		{false, true},  // down
		{false, false}, // still down
		{true, true},   // rise 1: up
	}
	for i, st := range steps {
		if got := s.Observe(st.ok); got != st.changed {
			t.Errorf("step %d (ok %v): changed %v, want %v", i, st.ok, got, st.changed)
		}
	}
}

func TestEffective(t *testing.T) {
	sc := func(name string, w int, st State) Check {
		return Check{Kind: KindScript, Name: name, Weight: w, State: st}
	}
	ln := func(name string, w int, st State) Check {
		return Check{Kind: KindLink, Name: name, Weight: w, State: st}
	}
	cases := []struct {
		name      string
		base      uint8
		checks    []Check
		prio      uint8
		fault     bool
		nReasons  int
		reasonHas string
	}{
		{"nothing tracked", 100, nil, 100, false, 0, ""},
		{"positive weight up adds", 100, []Check{sc("a", 20, Up)}, 120, false, 1, "script a up (+20)"},
		{"positive weight down adds nothing", 100, []Check{sc("a", 20, Down)}, 100, false, 0, ""},
		{"negative weight down subtracts", 100, []Check{sc("a", -30, Down)}, 70, false, 1, "script a down (-30)"},
		{"negative weight up nothing", 100, []Check{sc("a", -30, Up)}, 100, false, 0, ""},
		{"unknown adds nothing either way", 100, []Check{sc("a", 20, Unknown), sc("b", -20, Unknown)}, 100, false, 0, ""},
		{"weights sum", 100, []Check{sc("a", 10, Up), sc("b", -25, Down), ln("eth1", -5, Down), ln("eth2", 7, Up)}, 87, false, 4, "link eth1 down (-5)"},
		{"clamp low to 1", 50, []Check{sc("a", -253, Down)}, 1, false, 2, "priority -203 clamped to 1"},
		{"clamp exactly 0 to 1", 50, []Check{sc("a", -50, Down)}, 1, false, 2, "clamped to 1"},
		{"clamp high to 254", 200, []Check{sc("a", 100, Up)}, 254, false, 2, "priority 300 clamped to 254"},
		{"exactly 254 is not clamped", 200, []Check{sc("a", 54, Up)}, 254, false, 1, ""},
		{"weight 0 down is fault", 100, []Check{sc("a", 0, Down)}, 100, true, 1, "script a down (fault)"},
		{"weight 0 unknown is fault", 100, []Check{sc("a", 0, Unknown)}, 100, true, 1, "script a unknown (fault)"},
		{"weight 0 up is fine", 100, []Check{sc("a", 0, Up)}, 100, false, 0, ""},
		{"link weight 0 down is fault", 100, []Check{ln("eth0", 0, Down)}, 100, true, 1, "link eth0 down (fault)"},
		{"fault and priority together", 100, []Check{ln("eth0", 0, Down), sc("a", -10, Down)}, 90, true, 2, ""},
		{"owner keeps 255 under negative weight", 255, []Check{sc("a", -50, Down)}, 255, false, 2, "address owner"},
		{"owner keeps 255 under positive weight", 255, []Check{sc("a", 5, Up)}, 255, false, 2, "weights ignored"},
		{"owner still faults on weight 0", 255, []Check{sc("a", 0, Down)}, 255, true, 1, "(fault)"},
		{"base 254 with positive weight stays 254", 254, []Check{sc("a", 1, Up)}, 254, false, 2, "clamped to 254"},
		{"base 1 with negative weight stays 1", 1, []Check{sc("a", -1, Down)}, 1, false, 2, "clamped to 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.checks)
			prio, fault, reasons := Effective(c.base, c.checks)
			if prio != c.prio || fault != c.fault {
				t.Errorf("Effective(%d, %v) = %d, %v; want %d, %v", c.base, c.checks, prio, fault, c.prio, c.fault)
			}
			if len(reasons) != c.nReasons {
				t.Errorf("reasons %q: want %d", reasons, c.nReasons)
			}
			if c.reasonHas != "" && !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, c.reasonHas) }) {
				t.Errorf("reasons %q: none contains %q", reasons, c.reasonHas)
			}
			if !slices.Equal(in, c.checks) {
				t.Errorf("Effective modified its input")
			}
		})
	}
}

// TestEffectiveBounds checks the invariants over every base and a spread of
// weights: a non-owner stays in 1..254, an owner stays 255, fault iff a
// weight-0 item is not up.
func TestEffectiveBounds(t *testing.T) {
	weights := []int{-253, -200, -100, -1, 0, 1, 100, 253}
	states := []State{Unknown, Up, Down}
	for base := 1; base <= 255; base++ {
		for _, w1 := range weights {
			for _, w2 := range weights {
				for _, s1 := range states {
					for _, s2 := range states {
						cs := []Check{{Kind: KindScript, Name: "a", Weight: w1, State: s1}, {Kind: KindLink, Name: "b", Weight: w2, State: s2}}
						prio, fault, _ := Effective(uint8(base), cs)
						wantFault := (w1 == 0 && s1 != Up) || (w2 == 0 && s2 != Up)
						if fault != wantFault {
							t.Fatalf("base %d %v: fault %v, want %v", base, cs, fault, wantFault)
						}
						if base == 255 && prio != 255 {
							t.Fatalf("owner: %v gave %d", cs, prio)
						}
						if base != 255 && (prio < 1 || prio > 254) {
							t.Fatalf("base %d %v: %d out of 1..254", base, cs, prio)
						}
					}
				}
			}
		}
	}
}

func TestFlagsState(t *testing.T) {
	cases := []struct {
		flags uint32
		want  State
	}{
		{0, Down},
		{0x1, Down},  // IFF_UP only: no carrier
		{0x40, Down}, // IFF_RUNNING only: administratively down
		{0x41, Up},   // both
		{0x1 | 0x40 | 0x1000, Up},
	}
	for _, c := range cases {
		if got := flagsState(c.flags); got != c.want {
			t.Errorf("flags %#x: %v, want %v", c.flags, got, c.want)
		}
	}
}

func BenchmarkEffective(b *testing.B) {
	cs := []Check{{Kind: KindScript, Name: "a", Weight: -20, State: Down}, {Kind: KindScript, Name: "b", Weight: 0, State: Up}, {Kind: KindLink, Name: "eth0", Weight: 0, State: Up}}
	for b.Loop() {
		Effective(100, cs)
	}
}
