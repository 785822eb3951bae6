package quorum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Backends wrap them with %w and context.
var (
	// ErrHeld: the group's key exists (held by us under another grant, by
	// another node, or by an unknown writer).
	ErrHeld = errors.New("quorum: held by another")
	// ErrNotOwner: a release or epoch-checked write found a different epoch.
	ErrNotOwner = errors.New("quorum: not owner")
	// ErrLost: the session's lease is gone or its local deadline passed.
	ErrLost = errors.New("quorum: session lost")
	// ErrClosed: the session or backend was closed by its user.
	ErrClosed = errors.New("quorum: closed")
)

// RecordVersion is the version of the JSON value stored per group key.
const RecordVersion = 1

// Record is the value of a group's key at the quorum. Both backends store it
// as JSON so the CLI can read either.
type Record struct {
	V          int       `json:"v"`
	Node       string    `json:"node"`
	Addr       string    `json:"addr,omitempty"`
	Priority   int       `json:"priority"`
	Epoch      uint64    `json:"epoch,omitempty"` // informative; the authoritative epoch is the backend's
	AcquiredAt time.Time `json:"acquired_at"`
}

// ParseRecord decodes a key's value. A value that does not parse, or has an
// unknown version, or names no node, is an error: callers then treat the group
// as held by an unknown node, never as free.
func ParseRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("quorum: bad record: %w", err)
	}
	if r.V != RecordVersion {
		return Record{}, fmt.Errorf("quorum: bad record: version %d, want %d", r.V, RecordVersion)
	}
	if r.Node == "" {
		return Record{}, errors.New("quorum: bad record: no node")
	}
	return r, nil
}

// Grant is one successful acquisition of a group.
type Grant struct {
	Group string
	// Epoch is the fencing token: strictly increasing per group across
	// holders, restarts and leader changes (etcd: the key's create revision;
	// raft: the log index of the grant).
	Epoch uint64
	// AcquiredAt is the local wall-clock time the grant was acknowledged.
	AcquiredAt time.Time
}

// Holder describes who holds a group at the quorum.
type Holder struct {
	Group string `json:"group"`
	// Unknown is set when the stored value did not parse: the group counts
	// as held by an unknown node. Node/Addr are then empty and Raw keeps
	// (a prefix of) the value.
	Unknown    bool          `json:"unknown,omitempty"`
	Raw        string        `json:"raw,omitempty"`
	Node       string        `json:"node,omitempty"`
	Addr       string        `json:"addr,omitempty"`
	Priority   int           `json:"priority"`
	Epoch      uint64        `json:"epoch"`
	AcquiredAt time.Time     `json:"acquired_at"`
	TTLLeft    time.Duration `json:"ttl_left"` // at the server; -1 if not known
}

// Mark is an outdated mark at the quorum: the holder of Group at Epoch
// recorded that Node's copy of the group's replicated data (a DRBD disk)
// is outdated: Node went on without it. Node must not serve that data
// (DRBD: promote) until it has resynced and the mark is cleared.
type Mark struct {
	Group string `json:"group"`
	Node  string `json:"node"`
	// Epoch is the recorder's grant (the group's key carried it when the
	// mark was written).
	Epoch uint64 `json:"epoch"`
	// By names the recording node; At is its wall-clock time of recording.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at"`
}

// CheckMark checks a mark before it is sent: its names (CheckMarkNames)
// and an epoch.
func CheckMark(m Mark) error {
	if err := CheckMarkNames(m.Group, m.Node); err != nil {
		return err
	}
	if m.Epoch == 0 {
		return fmt.Errorf("quorum: outdated mark of %s in %s: no epoch", m.Node, m.Group)
	}
	return nil
}

// CheckMarkNames checks a mark's group and node names: neither empty nor
// containing '/' or NUL.
func CheckMarkNames(group, node string) error {
	for _, f := range [][2]string{{"group", group}, {"node", node}} {
		if f[1] == "" || strings.ContainsAny(f[1], "/\x00") {
			return fmt.Errorf("quorum: outdated mark: bad %s name %q", f[0], f[1])
		}
	}
	return nil
}

// EventType says what happened to a group's key.
type EventType int

const (
	EventPut    EventType = iota + 1 // key created (a grant)
	EventDelete                      // key deleted: released or expired
	// EventResync follows a lost and re-established watch: Holder carries
	// the current state (Holder.Epoch == 0 and Node == "" means free).
	EventResync
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventResync:
		return "resync"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change of a group's key.
type Event struct {
	Type   EventType
	Group  string
	Holder Holder // for put and resync
	Epoch  uint64 // for delete: the epoch of the deleted grant, if known
	At     time.Time
}

// Backend is one quorum (an etcd cluster or the raft group). It is safe for
// concurrent use.
type Backend interface {
	// Open starts this node's session: one lease at the quorum shared by
	// all groups the node acquires. The session is not renewed until its
	// Run is called.
	Open(ctx context.Context) (Session, error)
	// Inspect reads one group; ok is false when nobody holds it.
	Inspect(ctx context.Context, group string) (h Holder, ok bool, err error)
	// List reads every held group under the prefix.
	List(ctx context.Context) ([]Holder, error)
	// History returns the last grants of a group, oldest first (bounded).
	History(ctx context.Context, group string) ([]Holder, error)
	// MarkOutdated records m: node m.Node's copy of group m.Group's
	// replicated data is outdated (a DRBD fence-peer handler on the holder
	// outdated it). It is written only while the group's key carries
	// m.Epoch (the recorder's grant), else it fails with ErrNotOwner, so a
	// node that lost the lease cannot mark its peer. A node's earlier mark
	// is replaced. Marks belong to no session: they outlive the recorder's
	// lease and are removed only by ClearOutdated.
	MarkOutdated(ctx context.Context, m Mark) error
	// Outdated reads the group's marks, sorted by node.
	Outdated(ctx context.Context, group string) ([]Mark, error)
	// ClearOutdated removes node's mark in group (none there is no error).
	ClearOutdated(ctx context.Context, group, node string) error
	// Watch streams changes of one group ("" = every group) until ctx ends.
	// After a lost watch it re-reads and sends EventResync. The channel is
	// closed when ctx ends or the backend is closed.
	Watch(ctx context.Context, group string) (<-chan Event, error)
	Close() error
}

// Session is one node's lease at the quorum.
type Session interface {
	// ID names the session at the quorum (etcd lease ID, raft session id).
	ID() string
	// Acquire creates the group's key, attached to this session, only if it
	// is absent (compare-and-set). Fails with ErrHeld when it exists.
	Acquire(ctx context.Context, group string, priority int) (Grant, error)
	// Release deletes the group's key only if it still carries g's epoch.
	Release(ctx context.Context, g Grant) error
	// Deadline is the local deadline: the send time of the last acknowledged
	// renewal + TTL − drift bound − margin, on the monotonic clock. After it
	// this node must not act as owner. Zero after loss.
	Deadline() time.Time
	// Done is closed when the session is lost: the deadline came within the
	// demote budget without an acknowledged renewal, the lease was revoked or
	// expired at the quorum, or Close was called.
	Done() <-chan struct{}
	// Err says why Done was closed (wraps ErrLost or ErrClosed).
	Err() error
	// OnRenew registers f, run after every acknowledged renewal with the
	// round trip and the new local deadline (the kernel fence and metrics
	// follow it). Set it before Run. f runs on the renewal path: it must
	// not block.
	OnRenew(f func(rtt time.Duration, deadline time.Time))
	// Run renews the lease on its own timer until ctx ends or the session is
	// lost. It returns the loss error (or ctx.Err()).
	Run(ctx context.Context) error
	// Close revokes the lease (deleting all its keys) and ends the session.
	Close(ctx context.Context) error
}
