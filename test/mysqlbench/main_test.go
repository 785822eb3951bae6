package main

import (
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/mysqlcheck"
)

// keepalived's split-brain writes: the old master's acknowledgements of
// writes sent after the new master acknowledged its first, until the
// repair; before the takeover and after the repair they count not.
func TestSplitAfterTakeover(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := func(sent int, sid uint32, acked bool) mysqlcheck.Write {
		return mysqlcheck.Write{Sent: at(sent), Done: at(sent + 1), ServerID: sid, Acked: acked}
	}
	node := func(id uint32) string { return map[uint32]string{1: "n1", 2: "n2"}[id] }
	ws := []mysqlcheck.Write{
		w(0, 1, true), w(10, 1, true), // before the fault (at 5) and the takeover
		w(20, 1, true),                                  // after the fault, before n2's first ack: not counted
		w(30, 2, true),                                  // n2's first ack
		w(40, 1, true), w(50, 1, false), w(60, 1, true), // two split-brain acks (and a failure)
		w(70, 2, true),
		w(200, 1, true), // after the repair (at 100)
	}
	if n := splitAfterTakeover(ws, node, "n1", "n2", at(5), at(100)); n != 2 {
		t.Fatalf("split-brain writes %d, want 2", n)
	}
	if n := splitAfterTakeover(ws[:3], node, "n1", "n2", at(5), at(100)); n != 0 {
		t.Fatalf("no takeover: %d, want 0", n)
	}
}
