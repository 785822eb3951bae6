package mysqlcheck

import (
	"fmt"
	"slices"
	"time"
)

// Write is one write the client attempted, as the client saw it.
type Write struct {
	Seq  uint64
	Sent time.Time
	// Acked: the server acknowledged the commit, at Done; otherwise Err.
	Acked bool
	Done  time.Time
	Err   string
	// ServerID is the server the client's connection reached (0: unknown,
	// the connection failed before it could ask).
	ServerID uint32
}

// Row is one row a server holds after the drill: the write's sequence
// number, the server that accepted it and the epoch that server had
// recorded when it did.
type Row struct {
	Seq      uint64
	ServerID uint32
	Epoch    uint64
}

// Replication is one server's replication state after the drill.
type Replication struct {
	ServerID          uint32
	IOError, SQLError string
}

// Report is what a drill cost in writes.
type Report struct {
	Attempted, Acked int
	// Lost are acknowledged writes missing on the final server (the
	// master at the end): asynchronous replication can lose these.
	Lost []uint64
	// SplitBrain are acknowledged writes a server accepted after the
	// other server had accepted one under a newer epoch (must be 0).
	SplitBrain []uint64
	// Diverged are sequence numbers one server holds and the other not
	// after replication settled.
	Diverged []uint64
	// ReplicationErrors are the servers' replication errors after heal
	// (must be none).
	ReplicationErrors []string
	// Outages are the write outages: from the first failed write after a
	// good one to the next good write (sent times).
	Outages []time.Duration
	// MaxOutage is the longest of them.
	MaxOutage time.Duration
	// Unrecovered: the last writes failed and none succeeded after them.
	Unrecovered bool
}

// OK reports the invariants: no split-brain write, no divergence, no
// replication error. Lost writes are counted, not judged (asynchronous
// replication may lose some; a graceful switchover must not: see
// Report.Lost).
func (r Report) OK() bool {
	return len(r.SplitBrain) == 0 && len(r.Diverged) == 0 && len(r.ReplicationErrors) == 0 && !r.Unrecovered
}

func (r Report) String() string {
	return fmt.Sprintf("%d writes, %d acknowledged, %d lost, %d split-brain, %d diverged, %d replication errors, %d outages (max %v)",
		r.Attempted, r.Acked, len(r.Lost), len(r.SplitBrain), len(r.Diverged), len(r.ReplicationErrors), len(r.Outages), r.MaxOutage)
}

// Audit compares the client's log with what the servers hold after the
// drill. final is the server that is master at the end; rows holds every
// server's rows by server id.
func Audit(writes []Write, rows map[uint32][]Row, final uint32, repl []Replication) Report {
	var rep Report
	rep.Attempted = len(writes)
	byServer := map[uint32]map[uint64]Row{}
	for id, rs := range rows {
		m := map[uint64]Row{}
		for _, r := range rs {
			m[r.Seq] = r
		}
		byServer[id] = m
	}
	// The epoch each acknowledged write was accepted under, from any
	// server's copy of its row.
	epochOf := func(seq uint64) (Row, bool) {
		for _, m := range byServer {
			if r, ok := m[seq]; ok {
				return r, true
			}
		}
		return Row{}, false
	}
	acked := slices.DeleteFunc(slices.Clone(writes), func(w Write) bool { return !w.Acked })
	slices.SortFunc(acked, func(a, b Write) int { return a.Done.Compare(b.Done) })
	rep.Acked = len(acked)
	// Walk the acknowledgements in time order, remembering the newest
	// epoch any server had accepted a write under: a later ack from
	// another server under an older epoch is a split-brain write.
	var newest Row
	seenNewest := false
	for _, w := range acked {
		r, ok := epochOf(w.Seq)
		if !ok {
			continue
		}
		if seenNewest && r.ServerID != newest.ServerID && r.Epoch < newest.Epoch {
			rep.SplitBrain = append(rep.SplitBrain, w.Seq)
			continue
		}
		if !seenNewest || r.Epoch >= newest.Epoch {
			newest, seenNewest = r, true
		}
	}
	if m, ok := byServer[final]; ok {
		for _, w := range acked {
			if _, held := m[w.Seq]; !held {
				rep.Lost = append(rep.Lost, w.Seq)
			}
		}
	}
	seen := map[uint64]int{}
	for _, m := range byServer {
		for seq := range m {
			seen[seq]++
		}
	}
	for seq, n := range seen {
		if n != len(byServer) {
			rep.Diverged = append(rep.Diverged, seq)
		}
	}
	slices.Sort(rep.Diverged)
	for _, r := range repl {
		if r.IOError != "" || r.SQLError != "" {
			rep.ReplicationErrors = append(rep.ReplicationErrors, fmt.Sprintf("server %d: io %q sql %q", r.ServerID, r.IOError, r.SQLError))
		}
	}
	ordered := slices.Clone(writes)
	slices.SortFunc(ordered, func(a, b Write) int { return a.Sent.Compare(b.Sent) })
	var failedAt time.Time
	for _, w := range ordered {
		switch {
		case !w.Acked && failedAt.IsZero():
			failedAt = w.Sent
		case w.Acked && !failedAt.IsZero():
			d := w.Sent.Sub(failedAt)
			rep.Outages = append(rep.Outages, d)
			rep.MaxOutage = max(rep.MaxOutage, d)
			failedAt = time.Time{}
		}
	}
	rep.Unrecovered = !failedAt.IsZero()
	return rep
}
