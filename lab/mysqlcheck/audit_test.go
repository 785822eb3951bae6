package mysqlcheck

import (
	"slices"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := func(seq uint64, sent, done int, acked bool, sid uint32) Write {
		return Write{Seq: seq, Sent: at(sent), Done: at(done), Acked: acked, ServerID: sid}
	}
	// A failover from server 1 (epoch 10) to 2 (epoch 20): writes 3 and 4
	// fail (an outage of 20 ms), 2 was acknowledged by 1 but never reached
	// 2 (lost), 6 is acknowledged by 1 after 2 accepted 5 under epoch 20
	// (split brain).
	writes := []Write{w(1, 0, 1, true, 1), w(2, 10, 11, true, 1), w(3, 20, 21, false, 0), w(4, 30, 31, false, 0),
		w(5, 40, 41, true, 2), w(6, 50, 51, true, 1), w(7, 60, 61, true, 2)}
	rows := map[uint32][]Row{
		1: {{1, 1, 10}, {2, 1, 10}, {5, 2, 20}, {6, 1, 10}, {7, 2, 20}},
		2: {{1, 1, 10}, {5, 2, 20}, {7, 2, 20}},
	}
	r := Audit(writes, rows, 2, []Replication{{ServerID: 1}, {ServerID: 2, SQLError: "Duplicate entry '6'"}})
	if r.Attempted != 7 || r.Acked != 5 {
		t.Errorf("counts %+v", r)
	}
	if !slices.Equal(r.Lost, []uint64{2, 6}) {
		t.Errorf("lost %v", r.Lost)
	}
	if !slices.Equal(r.SplitBrain, []uint64{6}) {
		t.Errorf("split brain %v", r.SplitBrain)
	}
	if !slices.Equal(r.Diverged, []uint64{2, 6}) {
		t.Errorf("diverged %v", r.Diverged)
	}
	if len(r.ReplicationErrors) != 1 || len(r.Outages) != 1 || r.Outages[0] != 20*time.Millisecond || r.MaxOutage != 20*time.Millisecond {
		t.Errorf("errors %v outages %v", r.ReplicationErrors, r.Outages)
	}
	if r.OK() || r.Unrecovered {
		t.Errorf("OK %v unrecovered %v: %s", r.OK(), r.Unrecovered, r)
	}
	// A clean switchover: nothing lost, nothing split, OK; trailing
	// failures are an unrecovered outage.
	clean := Audit(writes[:2], map[uint32][]Row{1: {{1, 1, 10}, {2, 1, 10}}, 2: {{1, 1, 10}, {2, 1, 10}}}, 2, nil)
	if !clean.OK() || len(clean.Lost)+len(clean.SplitBrain)+len(clean.Diverged) != 0 {
		t.Errorf("clean: %s", clean)
	}
	if tail := Audit(writes[:4], nil, 2, nil); !tail.Unrecovered || tail.OK() {
		t.Errorf("trailing failures: %+v", tail)
	}
}
