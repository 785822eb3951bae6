package mysql

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMayPromote(t *testing.T) {
	applied := CatchupResult{Needed: true, Applied: true, Target: "2-2-9"}
	late := CatchupResult{Needed: true, Target: "2-2-9"}
	for _, tc := range []struct {
		name   string
		in     PromoteInput
		ok     bool
		anyway bool
		reason string
	}{
		{"nothing to apply", PromoteInput{Epoch: 5, ServerID: 1}, true, false, "nothing received"},
		{"own lower epoch", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{1, 4}, {2, 3}}}, true, false, ""},
		{"own same epoch (idempotent)", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{1, 5}}}, true, false, ""},
		{"peer newer", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{2, 6}}}, false, false, "stale epoch 5: server 2 recorded epoch 6"},
		{"own newer", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{1, 7}}}, false, false, "stale epoch"},
		{"peer same epoch", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{2, 5}}}, false, false, "already recorded by server 2"},
		{"applied", PromoteInput{Epoch: 5, ServerID: 1, Catchup: applied}, true, false, "applied up to 2-2-9"},
		{"late refuse", PromoteInput{Epoch: 5, ServerID: 1, Catchup: late, Policy: Refuse, Timeout: time.Second}, false, false, "not applied up to 2-2-9 within catchup_timeout 1s (catchup_policy refuse)"},
		{"late anyway", PromoteInput{Epoch: 5, ServerID: 1, Catchup: late, Policy: PromoteAnyway}, true, true, "promoting anyway"},
		{"unknown refuse", PromoteInput{Epoch: 5, ServerID: 1, Catchup: CatchupResult{Needed: true, Err: "SQL thread No"}, Policy: Refuse}, false, false, "cannot tell"},
		{"stale beats anyway", PromoteInput{Epoch: 5, ServerID: 1, Epochs: []EpochRow{{2, 9}}, Catchup: late, Policy: PromoteAnyway}, false, false, "stale"},
	} {
		d := MayPromote(tc.in)
		if d.OK != tc.ok || d.Anyway != tc.anyway || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: got %+v, want ok=%v anyway=%v reason~%q", tc.name, d, tc.ok, tc.anyway, tc.reason)
		}
	}
}

func TestWaitTargetAndMerge(t *testing.T) {
	if got := WaitTarget("1-1-20,2-2-7, 0-1-3,bad,3-x-1", 1); got != "2-2-7" {
		t.Errorf("WaitTarget = %q", got)
	}
	if got := WaitTarget("", 1); got != "" {
		t.Errorf("WaitTarget of nothing = %q", got)
	}
	if got := MergeTargets("2-2-7", "2-2-9,3-3-1", "", "2-2-8"); got != "2-2-9,3-3-1" {
		t.Errorf("MergeTargets = %q", got)
	}
}

func TestToKill(t *testing.T) {
	ss := []Session{
		{ID: 1, User: "system user", Command: "Slave_IO"},
		{ID: 2, User: "repl", Command: "Binlog Dump GTID"},
		{ID: 3, User: "app", Command: "Query"},
		{ID: 4, User: "root", Command: "Sleep", Bypass: true},
		{ID: 5, User: "root", Command: "Query", Bypass: true, Own: true},
		{ID: 6, User: "event_scheduler", Command: "Daemon"},
	}
	ids := func(ss []Session) (out []uint64) {
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids(ToKill(ss, AllClients)); !slices.Equal(got, []uint64{3, 4}) {
		t.Errorf("AllClients: %v", got)
	}
	if got := ids(ToKill(ss, BypassOnly)); !slices.Equal(got, []uint64{4}) {
		t.Errorf("BypassOnly: %v", got)
	}
}

func TestHealth(t *testing.T) {
	run := Replica{Configured: true, IORunning: "Yes", SQLRunning: "Yes", Lag: 2 * time.Second, LagKnown: true}
	for _, tc := range []struct {
		name   string
		err    error
		r      Replica
		rerr   error
		maxLag time.Duration
		ok     bool
		reason string
	}{
		{"down", errors.New("dial: refused"), Replica{}, nil, 0, false, "server: dial"},
		{"no replication", nil, Replica{}, nil, 0, true, "no replication"},
		{"replicating", nil, run, nil, 0, true, "lag 2s"},
		{"unreadable", nil, Replica{}, errors.New("denied"), 0, false, "unreadable"},
		{"sql stopped", nil, Replica{Configured: true, IORunning: "Yes", SQLRunning: "No", LastError: "Duplicate entry"}, nil, 0, false, "SQL thread No: Duplicate entry"},
		{"lag", nil, run, nil, time.Second, false, "lag 2s above max_lag 1s"},
		{"lag ok", nil, run, nil, 5 * time.Second, true, ""},
		{"io down is a note", nil, Replica{Configured: true, IORunning: "Connecting", SQLRunning: "Yes", MasterHost: "10.0.0.2"}, nil, time.Second, true, "IO thread Connecting"},
	} {
		ok, reason := Health(tc.err, tc.r, tc.rerr, tc.maxLag)
		if ok != tc.ok || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %v %q, want %v ~%q", tc.name, ok, reason, tc.ok, tc.reason)
		}
	}
}
