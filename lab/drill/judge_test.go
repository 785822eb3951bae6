package drill

import (
	"strings"
	"testing"
)

// The verdict's data-path rules: a node that comes back may cause at most
// one handback; GARPs from a node without the VIP fail the drill; so does
// a client outage once the lab is steady, or a slow first answer from the
// VIP's holder after the restore.
func TestJudgeDataPathRules(t *testing.T) {
	base := func() Result {
		return Result{OldOwner: "n1", NewOwner: "n2", ProbeIntervalUS: 20_000, ServedAfterVIPUS: 15_000,
			Timeline: Timeline{FaultUS: 1_000_000, RestoreUS: 2_000_000, Status: []Mark{
				{At: 0, Node: "n1", Role: "owner", Epoch: 8, Up: true},
				{At: 2_100_000, Node: "n2", Role: "owner", Epoch: 45, Up: true}, // the takeover, polled late
				{At: 2_500_000, Node: "n1", Role: "owner", Epoch: 63, Up: true}, // one handback
			}}}
	}
	cases := []struct {
		name string
		edit func(*Result)
		want string // "" = PASS
	}{
		{"takeover and one handback", func(*Result) {}, ""},
		{"ping-pong after the resume", func(r *Result) {
			r.Timeline.Status = append(r.Timeline.Status, Mark{At: 2_600_000, Node: "n2", Role: "owner", Epoch: 70, Up: true},
				Mark{At: 2_700_000, Node: "n1", Role: "owner", Epoch: 80, Up: true})
		}, "ownership changes after the restore"},
		{"GARP from a non-holder", func(r *Result) { r.NonHolderGARPs = map[string]int{"n2": 5} }, "5 gratuitous ARPs"},
		{"blackhole once steady", func(r *Result) { r.SteadyOutageUS = 542_000 }, "blackholed for 542ms"},
		{"slow first answer after the VIP moved", func(r *Result) { r.ServedAfterVIPUS = 5_000_000 }, "clients kept another MAC"},
		// Probes at +2, +22 ms failed, +42 ms answered: two failed probes
		// and the grid's phase (seen in a soak), not a kept MAC.
		{"two failed probes off the grid", func(r *Result) { r.ServedAfterVIPUS = 42_000 }, ""},
		{"three failed probes", func(r *Result) { r.ServedAfterVIPUS = 61_000 }, "clients kept another MAC"},
		{"data intact", func(r *Result) { r.Data = &DataReport{Samples: 300, SampleRate: 12, Acked: 90, Primary: "n2"} }, ""},
		{"two DRBD Primaries", func(r *Result) { r.Data = &DataReport{Samples: 300, TwoPrimary: 2, TwoPrimaryUS: 160_000} }, "STORAGE SPLIT BRAIN"},
		{"two Primaries between samples", func(r *Result) { r.Data = &DataReport{Samples: 300, TwoPrimaryUS: 40_000} }, "for 40ms"},
		{"lost records", func(r *Result) { r.Data = &DataReport{Acked: 90, Lost: 3, Primary: "n2"} }, "3 of 90 acknowledged records"},
		{"no data check", func(r *Result) { r.Data = &DataReport{Err: "no Primary"} }, "data check: no Primary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.edit(&r)
			r.judge(phases{expect: expectTakeover}, nil, nil)
			got := strings.Join(r.Reasons, "; ")
			if tc.want == "" && !r.Pass || tc.want != "" && (r.Pass || !strings.Contains(got, tc.want)) {
				t.Fatalf("verdict %s, reasons %q; want %q", r.Verdict, got, tc.want)
			}
		})
	}
}

// The write checker's verdict: split-brain writes, divergence,
// replication errors, no write acknowledged and writes not served again
// fail any drill; a lost acknowledged write fails graceful and any drill
// under semi-sync and is a note elsewhere; so are writes missing on the
// new master at takeover.
func TestJudgeWrites(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		m        MySQLWrites
		pass     bool
		want     string
	}{
		{"kill9", MySQLWrites{Attempted: 300, Acked: 290}, true, ""},
		{"kill9", MySQLWrites{Acked: 290, Lost: []uint64{7}}, true, "1 acknowledged writes lost (asynchronous replication)"},
		{"graceful", MySQLWrites{Acked: 290, Lost: []uint64{7}}, false, "lost in a graceful switchover"},
		{"freeze", MySQLWrites{Acked: 290, SplitBrain: []uint64{9, 10}}, false, "MySQL SPLIT BRAIN: 2 writes"},
		{"kill9", MySQLWrites{Diverged: []uint64{3}}, false, "1 rows on one server only"},
		{"kill9", MySQLWrites{ReplicationErrors: []string{"server 2: sql \"Duplicate entry\""}}, false, "replication errors"},
		{"kill9", MySQLWrites{Unrecovered: true}, false, "no write acknowledged after the lab was steady"},
		{"kill9", MySQLWrites{Error: "n2: connection refused"}, false, "audit: n2"},
		{"kill9", MySQLWrites{Attempted: 300}, false, "none of 300 writes"},
		{"kill9", MySQLWrites{Acked: 290, SemiSync: true, Lost: []uint64{7}}, false, "although replication is semi-synchronous"},
		{"mysqld-crash", MySQLWrites{Acked: 290, Snapshot: true, LostAtTakeover: []uint64{7, 8}}, true, "2 acknowledged writes were not on the new master"},
		{"mysqld-crash", MySQLWrites{Acked: 290, Snapshot: true, SemiSync: true, LostAtTakeover: []uint64{7}}, false, "although replication is semi-synchronous"},
		{"mysqld-crash", MySQLWrites{Acked: 290, Snapshot: true}, true, "held every acknowledged write"},
		{"kill9", MySQLWrites{Acked: 290, AuditRetries: 1}, true, "audit was repeated 1 times"},
	} {
		r := Result{Scenario: tc.scenario, Pass: true, Verdict: "PASS", MySQL: &tc.m}
		r.judgeWrites()
		all := strings.Join(append(r.Reasons, r.Notes...), "\n")
		if r.Pass != tc.pass || !strings.Contains(all, tc.want) {
			t.Errorf("%s %+v: pass %v %q, want pass %v ~%q", tc.scenario, tc.m, r.Pass, all, tc.pass, tc.want)
		}
	}
	// Without MySQL the verdict is untouched.
	r := Result{Pass: false, Verdict: "FAIL", Reasons: []string{"x"}}
	r.judgeWrites()
	if r.Pass {
		t.Fatal("judgeWrites changed a result without MySQL")
	}
}
