package lvs

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var tcp = Check{Kind: TCPCheck, DelayLoop: 6 * time.Second, DelayBeforeRetry: time.Second, Retry: 2, ConnectTimeout: 3 * time.Second}

// Step walks keepalived's tcp_epilog: each row is a run of outcomes from
// the initial state, with the delays and Up after each.
func TestStep(t *testing.T) {
	ok, fail := Outcome{OK: true, Dynamic: -1}, Outcome{Dynamic: -1}
	alpha := tcp
	alpha.Alpha = true
	noRetry := tcp
	noRetry.Retry = 0
	cases := []struct {
		name   string
		check  Check
		runs   []Outcome
		ups    string // Up after each run: u or d
		delays []time.Duration
		flips  string // changed after each run: * or .
	}{
		{"up stays up", tcp, []Outcome{ok, ok}, "uu", []time.Duration{6e9, 6e9}, ".."},
		{"fails after retry+1 failures, retries spaced by delay_before_retry", tcp,
			[]Outcome{fail, fail, fail, fail}, "uudd", []time.Duration{1e9, 1e9, 6e9, 6e9}, "..*."},
		{"a success between failures resets the retries", tcp,
			[]Outcome{fail, fail, ok, fail, fail, fail}, "uuuuud", []time.Duration{1e9, 1e9, 6e9, 1e9, 1e9, 6e9}, ".....*"},
		{"one success brings a down checker up", tcp,
			[]Outcome{fail, fail, fail, ok}, "uudu", []time.Duration{1e9, 1e9, 6e9, 6e9}, "..**"},
		{"retry 0: the first failure is down", noRetry, []Outcome{fail}, "d", []time.Duration{6e9}, "*"},
		{"alpha starts down and stays down on failures", alpha, []Outcome{fail, fail}, "dd", []time.Duration{6e9, 6e9}, ".."},
		{"alpha: the first success is up", alpha, []Outcome{ok}, "u", []time.Duration{6e9}, "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := InitialState(c.check)
			for i, o := range c.runs {
				var next time.Duration
				var changed bool
				s, next, changed = Step(c.check, s, o)
				if got := map[bool]byte{true: 'u', false: 'd'}[s.Up]; got != c.ups[i] {
					t.Errorf("run %d: up %c, want %c", i, got, c.ups[i])
				}
				if next != c.delays[i] {
					t.Errorf("run %d: next %v, want %v", i, next, c.delays[i])
				}
				if changed != (c.flips[i] == '*') {
					t.Errorf("run %d: changed %v", i, changed)
				}
			}
		})
	}
}

// Detection of a dead server: delay_loop + retry × (connect_timeout +
// delay_before_retry) + connect_timeout at most, the formula plus
// the failing run itself.
func TestStepDetectionTime(t *testing.T) {
	s := InitialState(tcp)
	elapsed := tcp.DelayLoop // the server dies just after a success
	for {
		var next time.Duration
		var changed bool
		elapsed += tcp.ConnectTimeout
		s, next, changed = Step(tcp, s, Outcome{Dynamic: -1})
		if changed {
			break
		}
		elapsed += next
	}
	want := tcp.DelayLoop + time.Duration(tcp.Retry)*(tcp.ConnectTimeout+tcp.DelayBeforeRetry) + tcp.ConnectTimeout
	if elapsed != want {
		t.Errorf("detected after %v, want %v", elapsed, want)
	}
}

func TestStepMiscDynamic(t *testing.T) {
	c := Check{Kind: MiscCheck, DelayLoop: time.Second, Dynamic: true}
	s, _, _ := Step(c, InitialState(c), Outcome{OK: true, Dynamic: 10})
	if s.Dynamic != 10 {
		t.Fatalf("dynamic %d", s.Dynamic)
	}
	r := Real(RealServer{Weight: 3}, []CheckState{s})
	if !r.Alive || r.Weight != 10 {
		t.Errorf("real %+v, want alive weight 10", r)
	}
	s, _, _ = Step(c, s, Outcome{OK: true, Dynamic: -1})
	if s.Dynamic != -1 {
		t.Errorf("exit 0 keeps weight %d, want the configured one", s.Dynamic)
	}
}

func TestQuorumStep(t *testing.T) {
	cases := []struct {
		up, live, q, h, want int
	}{
		{0, 0, 1, 0, 0}, {0, 1, 1, 0, 1}, {1, 0, 1, 0, 0},
		{0, 3, 3, 1, 0}, {0, 4, 3, 1, 1}, // gain needs quorum + hysteresis
		{1, 2, 3, 1, 1}, {1, 1, 3, 1, 0}, // loss below quorum − hysteresis
		{1, 0, 0, 0, 0}, // no live weight is always lost
	}
	for _, c := range cases {
		if got := QuorumStep(c.up == 1, c.live, c.q, c.h); got != (c.want == 1) {
			t.Errorf("QuorumStep(up %d, live %d, quorum %d, hyst %d) = %v", c.up, c.live, c.q, c.h, got)
		}
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDesired(t *testing.T) {
	k1 := Key{Proto: TCP, Addr: ap("10.0.0.99:80")}
	k2 := Key{Proto: TCP, Addr: ap("10.0.0.98:80")}
	s := Service{Keys: []Key{k1, k2}, Scheduler: "wrr", Persistence: 50 * time.Second, Reals: []RealServer{
		{Addr: ap("10.0.1.1:80"), Weight: 2, Forward: DR},
		{Addr: ap("10.0.1.2:80"), Weight: 3, Forward: DR, Inhibit: true},
		{Addr: ap("10.0.1.3:80"), Weight: 1, Forward: DR},
	}}
	sorry := s
	sorry.Sorry = &RealServer{Addr: ap("10.0.2.1:80"), Forward: NAT}
	cases := []struct {
		name   string
		s      Service
		reals  []RealState
		quorum bool
		want   string
	}{
		{"all live", s, []RealState{{true, 2}, {true, 3}, {true, 1}}, true, "10.0.1.1:80/2 10.0.1.2:80/3 10.0.1.3:80/1"},
		{"failed: removed, inhibited: weight 0", s, []RealState{{false, 2}, {false, 3}, {true, 1}}, true, "10.0.1.2:80/0 10.0.1.3:80/1"},
		{"quorum lost without sorry server: live ones stay", s, []RealState{{false, 2}, {false, 3}, {true, 1}}, false, "10.0.1.2:80/0 10.0.1.3:80/1"},
		{"quorum lost with sorry server: the sorry server alone", sorry, []RealState{{false, 2}, {false, 3}, {true, 1}}, false, "10.0.1.2:80/0 10.0.2.1:80/1"},
		{"quorum up: no sorry server", sorry, []RealState{{true, 2}, {true, 3}, {true, 1}}, true, "10.0.1.1:80/2 10.0.1.2:80/3 10.0.1.3:80/1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := Desired(c.s, c.reals, c.quorum)
			if len(vs) != 2 || vs[0].Key != k1 || vs[1].Key != k2 || vs[0].Timeout != 50 {
				t.Fatalf("services %+v", vs)
			}
			var got []string
			for _, d := range vs[1].Dests {
				got = append(got, d.Addr.String()+"/"+strconv.Itoa(d.Weight))
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("dests %q, want %q", g, c.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	k1 := Key{Proto: TCP, Addr: ap("10.0.0.99:80")}
	k2 := Key{Proto: TCP, Addr: ap("10.0.0.99:443")}
	foreign := Key{Proto: UDP, Addr: ap("10.9.9.9:53")}
	d := func(a string, w int) Dest { return Dest{Addr: ap(a), Weight: w, Forward: DR} }
	v := func(k Key, sched string, ds ...Dest) Virtual { return Virtual{Key: k, Scheduler: sched, Dests: ds} }
	managed := func(k Key) bool { return k != foreign }
	cases := []struct {
		name            string
		desired, actual []Virtual
		want            []string
	}{
		{"empty kernel", []Virtual{v(k1, "rr", d("10.0.1.1:80", 1))}, nil,
			[]string{"add service TCP 10.0.0.99:80", "add real server 10.0.1.1:80 (weight 1, DR) in TCP 10.0.0.99:80"}},
		{"in sync", []Virtual{v(k1, "rr", d("10.0.1.1:80", 1))}, []Virtual{v(k1, "rr", d("10.0.1.1:80", 1))}, nil},
		{"weight, scheduler, extra and missing server", []Virtual{v(k1, "wrr", d("10.0.1.1:80", 5), d("10.0.1.2:80", 1))},
			[]Virtual{v(k1, "rr", d("10.0.1.1:80", 1), d("10.0.1.3:80", 1))},
			[]string{"update service TCP 10.0.0.99:80", "update real server 10.0.1.1:80 (weight 5, DR) in TCP 10.0.0.99:80",
				"add real server 10.0.1.2:80 (weight 1, DR) in TCP 10.0.0.99:80", "delete real server 10.0.1.3:80 (weight 1, DR) in TCP 10.0.0.99:80"}},
		{"undesired managed service deleted, foreign one kept", nil, []Virtual{v(k2, "rr"), v(foreign, "rr")},
			[]string{"delete service TCP 10.0.0.99:443"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, op := range Diff(c.desired, c.actual, managed) {
				got = append(got, op.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("ops\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
