// Package quorumtest holds the contract suite that every quorum backend must
// pass against real servers, and the fault-injection surface it needs; and
// Memory, an in-memory quorum that passes the same contract, for unit tests
// of the packages that use a quorum (see its doc comment for what it
// guarantees).
package quorumtest

import (
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Cluster is a real quorum under test (embedded etcd members or raft voters on
// 127.0.0.1) with named faults. Implementations live beside each backend's
// tests; RunContract drives them.
type Cluster interface {
	// Name is used in subtest names ("etcd-1", "etcd-3", "raft-3").
	Name() string
	// MinTTL is the smallest TTL the backend accepts in this set-up.
	MinTTL() time.Duration
	// Backend returns a client for the named contender, with its own
	// connection so that Partition(node) cuts only that contender. It is
	// closed by t.Cleanup.
	Backend(t testing.TB, node string, opts quorum.Options) quorum.Backend
	// Partition cuts node's client from the quorum (etcd: blackhole its
	// connection through a proxy the cluster controls; raft: partition its
	// transport/client path). Heal undoes it.
	Partition(t testing.TB, node string)
	Heal(t testing.TB, node string)
	// KillLeader stops the current quorum leader (etcd member, raft leader)
	// and returns its name; Restart brings it back.
	KillLeader(t testing.TB) string
	Restart(t testing.TB, member string)
	// StopAll stops every quorum member; StartAll restarts them with their data.
	StopAll(t testing.TB)
	StartAll(t testing.TB)
	// WriteRaw stores an arbitrary value under the group's key as another
	// tool would (for the bad-values test). ttl 0 means no lease/expiry.
	WriteRaw(t testing.TB, group string, value []byte)
}
