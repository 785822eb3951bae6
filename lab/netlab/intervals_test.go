package netlab

import (
	"time"

	"encoding/json"
	"net/netip"
	"slices"
	"testing"
)

func st(us int64) Stamp { return Stamp{MonoUS: us, WallUS: 1_700_000_000_000_000 + us} }

func monitorWith(start, end int64, evs ...AddrEvent) *AddrMonitor {
	return &AddrMonitor{events: evs, start: st(start), end: st(end), ready: make(chan struct{})}
}

func TestAddrMonitorIntervals(t *testing.T) {
	m := monitorWith(10, 1000,
		AddrEvent{At: st(100), Host: "n1", Added: true},
		AddrEvent{At: st(100), Host: "n1", Added: true}, // duplicate (dump + event)
		AddrEvent{At: st(300), Host: "n2", Added: true},
		AddrEvent{At: st(400), Host: "n3", Added: true},
		AddrEvent{At: st(500), Host: "n1", Added: false},
		AddrEvent{At: st(600), Host: "n3", Added: false},
		AddrEvent{At: st(700), Host: "n1", Added: true},
	)
	hold := m.HolderIntervals()
	want := []struct {
		from, to int64
		who      []string
	}{
		{10, 100, nil},
		{100, 300, []string{"n1"}},
		{300, 400, []string{"n1", "n2"}},
		{400, 500, []string{"n1", "n2", "n3"}},
		{500, 600, []string{"n2", "n3"}},
		{600, 700, []string{"n2"}},
		{700, 1000, []string{"n1", "n2"}},
	}
	if len(hold) != len(want) {
		t.Fatalf("holder intervals = %+v", hold)
	}
	for i, w := range want {
		if hold[i].Start.MonoUS != w.from || hold[i].End.MonoUS != w.to || !slices.Equal(hold[i].Who, w.who) {
			t.Errorf("interval %d = %+v, want %+v", i, hold[i], w)
		}
	}
	if !hold[len(hold)-1].Open {
		t.Errorf("last interval not open")
	}
	dual := m.DualIntervals()
	if len(dual) != 2 || dual[0].Start.MonoUS != 300 || dual[0].End.MonoUS != 600 ||
		!slices.Equal(dual[0].Who, []string{"n1", "n2", "n3"}) || dual[0].DurUS != 300 ||
		dual[1].Start.MonoUS != 700 || !dual[1].Open {
		t.Errorf("dual intervals = %+v", dual)
	}
	if h := m.Holders(st(450)); !slices.Equal(h, []string{"n1", "n2", "n3"}) {
		t.Errorf("Holders(450) = %v", h)
	}
	if h := m.Holders(st(50)); len(h) != 0 {
		t.Errorf("Holders(50) = %v", h)
	}
}

func TestTCPTimelineAndReport(t *testing.T) {
	p := &TCPProber{end: st(1000), samples: []TCPSample{
		{At: st(0), Err: "timeout"},
		{At: st(100), Node: "n1"},
		{At: st(200), Node: "n1"},
		{At: st(300), Err: "timeout"},
		{At: st(400), Err: "refused"},
		{At: st(500), Node: "n2"},
		{At: st(600), Node: "n1"},
		{At: st(700), Err: "timeout"},
	}}
	ans := p.Answerers()
	if len(ans) != 6 || !slices.Equal(ans[1].Who, []string{"n1"}) || ans[1].End.MonoUS != 300 {
		t.Fatalf("answerers = %+v", ans)
	}
	out := p.Outages()
	if len(out) != 3 || out[1].Start.MonoUS != 300 || out[1].End.MonoUS != 500 || !out[2].Open || out[2].End.MonoUS != 1000 {
		t.Errorf("outages = %+v", out)
	}
	r := BuildReport(mustAddr("10.99.0.100"), ReportOptions{Fault: st(250), OldOwner: "n1"}, nil, nil, p)
	// Counted after the fault: 300–500 and 700–1000; the one before is listed only.
	if r.TCP.OutageTotalUS != 500 || r.TCP.OutageMaxUS != 300 || len(r.TCP.Outages) != 3 {
		t.Errorf("outage figures = %+v", r.TCP)
	}
	if r.TCP.NewOwner != "n2" || r.TCP.TimeToNewOwnUS != 250 || r.TCP.Flips != 2 || r.TCP.Failures != 4 {
		t.Errorf("report = %+v", r.TCP)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.TCP.OutageTotalUS != 500 || back.Fault.MonoUS != 250 {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestARPChanges(t *testing.T) {
	p := &ARPProber{rounds: []ARPRound{
		{At: st(0)},
		{At: st(100), Hosts: []string{"n1"}, MACs: []string{"a"}},
		{At: st(200), Hosts: []string{"n1"}, MACs: []string{"a"}, GARPs: map[string]int{"n1": 2}},
		{At: st(300), Hosts: []string{"n1", "n2"}, MACs: []string{"a", "b"}, GARPs: map[string]int{"n2": 5}},
		{At: st(400), Hosts: []string{"n2"}, MACs: []string{"b"}},
	}}
	if ch := p.Changes(); len(ch) != 4 {
		t.Errorf("changes = %+v", ch)
	}
	if d := p.DualRounds(); len(d) != 1 || d[0].At.MonoUS != 300 {
		t.Errorf("dual = %+v", d)
	}
	if g := p.GARPCount(); g["n1"] != 2 || g["n2"] != 5 {
		t.Errorf("garps = %v", g)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// A GARP counts against its host when the host held the VIP at no instant
// of the round, widened by garpSlack (n2 at 100 ms announces long before
// it holds: counted; n1 at 200 ms holds: not counted; n1 at 450 ms lets go
// inside the round: not counted; n2 at 520 ms, stamped holding only at
// 600 ms by the monitor: within the slack, not counted).
func TestNonHolderGARPs(t *testing.T) {
	ms := func(v int64) Stamp { return st(v * 1000) }
	rounds := []ARPRound{
		{At: ms(200), GARPs: map[string]int{"n1": 2}},
		{At: ms(100), GARPs: map[string]int{"n2": 3}},
		{At: ms(450), GARPs: map[string]int{"n1": 1}},
		{At: ms(520), GARPs: map[string]int{"n2": 5}},
		{At: ms(700), GARPs: map[string]int{"n2": 4}},
	}
	holders := []Interval{
		newInterval(ms(0), ms(500), false, []string{"n1"}),
		newInterval(ms(500), ms(600), false, nil),
		newInterval(ms(600), ms(1400), true, []string{"n2"}),
	}
	// n3's burst at 1200 ms is too close to the monitor's end (1400 ms) to
	// be judged: its address may not have been reported yet.
	rounds = append(rounds, ARPRound{At: ms(1200), GARPs: map[string]int{"n3": 5}})
	got, at := NonHolderGARPs(rounds, 100*time.Millisecond, holders)
	if len(got) != 1 || got["n2"] != 3 || len(at) != 1 || at[0].At != ms(100) {
		t.Fatalf("non-holder GARPs = %v in rounds %v, want n2: 3 at 100 ms", got, at)
	}
}
