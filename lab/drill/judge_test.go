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
