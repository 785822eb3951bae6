package mysql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CatchupResult is what the wait for the relay log found.
type CatchupResult struct {
	// Needed: something received was not known applied (a target to wait
	// for existed).
	Needed bool
	// Applied: the target was reached within the catch-up timeout.
	Applied bool
	// Target is the GTID position waited for; Waited how long it took.
	Target string
	Waited time.Duration
	// Err: the replication state could not be read or the wait failed
	// (counts as not applied).
	Err string
}

// PromoteInput is what the promotion decision looks at.
type PromoteInput struct {
	Epoch    uint64
	ServerID uint32
	Epochs   []EpochRow
	Catchup  CatchupResult
	Policy   Policy
	Timeout  time.Duration
}

// PromoteDecision is MayPromote's answer.
type PromoteDecision struct {
	OK bool
	// Anyway: allowed by promote_anyway although the relay log was not
	// applied (reported as a warning).
	Anyway bool
	Reason string
}

// MayPromote decides whether the server may become writable for epoch: a
// stale epoch (any server recorded a higher one, or another server the
// same one) is always refused; a relay log not applied within the
// timeout is refused or, with promote_anyway, allowed and reported.
func MayPromote(in PromoteInput) PromoteDecision {
	for _, r := range in.Epochs {
		switch {
		case r.Epoch > in.Epoch:
			return PromoteDecision{Reason: fmt.Sprintf("stale epoch %d: server %d recorded epoch %d", in.Epoch, r.ServerID, r.Epoch)}
		case r.Epoch == in.Epoch && r.ServerID != in.ServerID:
			return PromoteDecision{Reason: fmt.Sprintf("epoch %d is already recorded by server %d (one grant, one writable server)", in.Epoch, r.ServerID)}
		}
	}
	c := in.Catchup
	switch {
	case !c.Needed && c.Err == "":
		return PromoteDecision{OK: true, Reason: "nothing received left to apply"}
	case c.Applied:
		return PromoteDecision{OK: true, Reason: fmt.Sprintf("relay log applied up to %s in %v", c.Target, c.Waited.Round(time.Millisecond))}
	}
	why := fmt.Sprintf("relay log not applied up to %s within catchup_timeout %v", c.Target, in.Timeout)
	if c.Err != "" {
		why = "cannot tell whether the relay log is applied: " + c.Err
	}
	if in.Policy == PromoteAnyway {
		return PromoteDecision{OK: true, Anyway: true, Reason: why + "; promoting anyway (catchup_policy promote_anyway): transactions applied later may conflict with new writes"}
	}
	return PromoteDecision{Reason: why + " (catchup_policy refuse)"}
}

// WaitTarget is the part of a GTID position (domain-server-seq, comma
// separated) that this server must apply: the GTIDs other servers
// originated (a server never applies its own back).
func WaitTarget(pos string, self uint32) string {
	var out []string
	for g := range strings.SplitSeq(pos, ",") {
		g = strings.TrimSpace(g)
		f := strings.Split(g, "-")
		if len(f) != 3 {
			continue
		}
		if sid, err := strconv.ParseUint(f[1], 10, 32); err != nil || uint32(sid) == self {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, ",")
}

// MergeTargets joins GTID positions keeping the highest sequence number
// per domain and server.
func MergeTargets(ps ...string) string {
	type key struct{ domain, server string }
	best := map[key]uint64{}
	var order []key
	for _, p := range ps {
		for g := range strings.SplitSeq(p, ",") {
			f := strings.Split(strings.TrimSpace(g), "-")
			if len(f) != 3 {
				continue
			}
			seq, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				continue
			}
			k := key{f[0], f[1]}
			if old, ok := best[k]; !ok || seq > old {
				if !ok {
					order = append(order, k)
				}
				best[k] = seq
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k.domain+"-"+k.server+"-"+strconv.FormatUint(best[k], 10))
	}
	return strings.Join(out, ",")
}

// Which sessions a kill round ends.
type KillScope int

const (
	// AllClients: every client connection (a demotion).
	AllClients KillScope = iota
	// BypassOnly: only the connections of accounts that ignore read_only
	// (the watch of a read-only server).
	BypassOnly
)

// serverThreads are processlist commands of the server's own threads and
// of replication, never killed: the peer's replica reading our binlog
// (Binlog Dump) and our own replication threads.
var serverThreads = []string{"Binlog Dump", "Binlog Dump GTID", "Daemon", "Slave_IO", "Slave_SQL", "Slave_worker"}

// ToKill picks the sessions a kill round ends: client connections (not
// ours, not the server's or replication's threads), all of them or only
// the bypassing ones.
func ToKill(ss []Session, scope KillScope) []Session {
	var out []Session
	for _, s := range ss {
		switch {
		case s.Own, s.User == "system user", s.User == "event_scheduler", slices.Contains(serverThreads, s.Command):
			continue
		case scope == BypassOnly && !s.Bypass:
			continue
		}
		out = append(out, s)
	}
	return out
}

// Health decides the health check from what the server said: err is the
// Status call's error (no connection, SELECT failed). A replica whose IO
// thread is not running only makes a note (its master, the peer, may be
// down: that is when this server is needed); a stopped SQL thread or a
// lag above maxLag (0: not checked) is a failure.
func Health(err error, r Replica, rerr error, maxLag time.Duration) (ok bool, reason string) {
	switch {
	case err != nil:
		return false, "server: " + err.Error()
	case rerr != nil:
		return false, "replication state unreadable: " + rerr.Error()
	case !r.Configured:
		return true, "up (no replication configured)"
	case r.SQLRunning != "Yes":
		e := r.LastError
		if e == "" {
			e = "stopped"
		}
		return false, fmt.Sprintf("replication SQL thread %s: %s", r.SQLRunning, e)
	case maxLag > 0 && r.IORunning == "Yes" && (!r.LagKnown || r.Lag > maxLag):
		if !r.LagKnown {
			return false, "replication lag unknown (Seconds_Behind_Master NULL)"
		}
		return false, fmt.Sprintf("replication lag %v above max_lag %v", r.Lag, maxLag)
	case r.IORunning != "Yes":
		return true, fmt.Sprintf("up; replication IO thread %s (master %s unreachable?): %s", r.IORunning, r.MasterHost, r.LastIOError)
	default:
		return true, fmt.Sprintf("up; replicating, lag %v", r.Lag)
	}
}
