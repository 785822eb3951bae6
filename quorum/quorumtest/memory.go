package quorumtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Memory is an in-memory quorum: one key space and lease table that several
// nodes reach through their own clients (Client, Backend), with named faults
// for tests. It models a three-member cluster (m0 m1 m2) only as far as
// availability goes: it serves while it has a leader.
//
// Guaranteed:
//   - Acquire is a compare-and-set create; a session acquiring a group it
//     already holds gets its grant back (same epoch); others get ErrHeld.
//   - Epochs are the value of one global revision counter at the grant, so
//     they strictly increase per group across holders, restarts and leader
//     changes. Release deletes only the grant with the given epoch.
//   - Sessions use quorum.NewRenewer: the local deadline is the shared code's
//     (send time of the last acknowledged renewal + TTL − drift − margin).
//     The server expires a lease TTL after it last received a renewal (the
//     renewal's arrival, never before its send), so a holder's local deadline
//     always passes first; expiry deletes the lease's keys.
//   - While the cluster has no leader (StopAll, KillLeader until the
//     election) every call fails at once and no lease expires; a new leader
//     re-arms every lease with the full TTL, as raft does.
//   - A partitioned node's calls (renewals too) block until their context or
//     RequestTimeout ends, or until Heal, and are never applied; its watches
//     see nothing and, once healed (and a leader serves), resync.
//   - Watches deliver every put and delete after Watch returns, in order;
//     after a break they send EventResync like the etcd backend: one per
//     held group in scope, for a group watch one with an empty Holder when
//     it is free, for a watch of every group a final one with Group "".
//   - Values written with WriteRaw that do not parse are held by an unknown
//     node (Holder.Unknown, Raw cut to 64 bytes).
//   - It starts no goroutine and no timer outside a call (Watch, Open, a
//     renewal, KillLeader...), all timers come from the time package: a
//     Memory created inside a testing/synctest bubble runs on its fake clock.
//
// Not guaranteed:
//   - Anything about latency: calls are served at once (a partitioned call
//     only ever fails). There is no "applied but the answer was lost".
//   - Member-level behaviour (replication, follower reads, snapshots): the
//     members only count towards a quorum.
//   - A Memory shared between synctest bubbles, or between a bubble and the
//     outside: create it inside the bubble that uses it.
type Memory struct {
	minTTL time.Duration
	// ElectionDelay is how long the cluster has no leader after KillLeader
	// (when a quorum of members is still up). Set it before use.
	ElectionDelay time.Duration

	mu       sync.Mutex
	rev      uint64 // global revision: every write takes the next one
	leaseSeq uint64
	keys     map[string]*memKey
	leases   map[uint64]*memLease
	history  map[string][]quorum.Holder
	marks    map[string]map[string]quorum.Mark // group → node → mark
	watchers map[*memWatch]struct{}
	cut      map[string]chan struct{} // partitioned nodes: closed on Heal
	members  [3]bool                  // up
	leader   int                      // -1: none
	election *time.Timer
}

// memHistoryMax bounds the grants kept per group (quorum.Options allows a
// HistoryLen up to 1000).
const memHistoryMax = 1000

type memKey struct {
	value []byte
	epoch uint64
	lease uint64 // 0: written without a lease (WriteRaw)
}

type memLease struct {
	id      uint64
	node    string
	ttl     time.Duration
	keys    map[string]bool
	timer   *time.Timer // nil while there is no leader
	expires time.Time
}

type memWatch struct {
	node, group string
	notify      chan struct{} // 1 slot
	queue       []quorum.Event
	broken      bool // partitioned or no leader: resync when it mends
}

// NewMemory returns an in-memory quorum with every member up and m0 the
// leader. minTTL is the smallest lease TTL it accepts. It starts nothing.
func NewMemory(minTTL time.Duration) *Memory {
	return &Memory{
		minTTL:        minTTL,
		ElectionDelay: minTTL / 5,
		keys:          map[string]*memKey{},
		leases:        map[uint64]*memLease{},
		history:       map[string][]quorum.Holder{},
		marks:         map[string]map[string]quorum.Mark{},
		watchers:      map[*memWatch]struct{}{},
		cut:           map[string]chan struct{}{},
		members:       [3]bool{true, true, true},
		leader:        0,
	}
}

// MinTTL is the smallest TTL the memory quorum accepts.
func (m *Memory) MinTTL() time.Duration { return m.minTTL }

// Client returns node's own client. Options are validated against MinTTL by
// Open. Close it when done.
func (m *Memory) Client(node string, opts quorum.Options) quorum.Backend {
	return &memClient{m: m, node: node, opts: opts, closed: make(chan struct{})}
}

// Backend returns node's client, fails t if opts are invalid, and closes the
// client in t.Cleanup.
func (m *Memory) Backend(t testing.TB, node string, opts quorum.Options) quorum.Backend {
	t.Helper()
	if err := opts.Validate(m.minTTL); err != nil {
		t.Fatalf("memory quorum: %v", err)
	}
	b := m.Client(node, opts)
	t.Cleanup(func() { b.Close() })
	return b
}

// Partition cuts node's clients off: their calls block until their context
// or request timeout ends (or Heal) and fail, their watches break, and their
// leases are no longer renewed, so they expire at the server.
func (m *Memory) Partition(node string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cut[node]; ok {
		return
	}
	m.cut[node] = make(chan struct{})
	for w := range m.watchers {
		if w.node == node {
			w.broken = true
		}
	}
}

// Heal undoes Partition: blocked calls fail at once, later ones are served,
// and node's watches resync (if a leader serves).
func (m *Memory) Heal(node string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.cut[node]
	if !ok {
		return
	}
	delete(m.cut, node)
	close(ch)
	if m.leader >= 0 {
		m.resyncLocked(func(w *memWatch) bool { return w.node == node })
	}
}

// Expire ends every lease node holds now, as a server-side expiry would:
// their keys are deleted (watchers see it) and the next renewal reports
// the session lost.
func (m *Memory) Expire(node string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.leases {
		if l.node == node {
			m.dropLeaseLocked(l)
		}
	}
}

// KillLeader stops the leader member and returns its name ("" if there was
// none). If a quorum is still up, another member leads after ElectionDelay.
func (m *Memory) KillLeader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leader < 0 {
		return ""
	}
	name := memberName(m.leader)
	m.members[m.leader] = false
	m.loseLeaderLocked()
	if m.quorumLocked() {
		m.election = time.AfterFunc(m.ElectionDelay, m.elect)
	}
	return name
}

// Restart brings a stopped member back; with a quorum and no leader, one is
// elected at once.
func (m *Memory) Restart(member string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.members {
		if memberName(i) == member {
			m.members[i] = true
			if m.leader < 0 && m.quorumLocked() {
				m.electLocked()
			}
			return nil
		}
	}
	return fmt.Errorf("memory quorum: no member %q", member)
}

// StopAll stops every member: all calls fail and no lease expires until
// StartAll.
func (m *Memory) StopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members = [3]bool{}
	m.loseLeaderLocked()
}

// StartAll starts every member; a leader is elected at once and every lease
// restarts with its full TTL.
func (m *Memory) StartAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members = [3]bool{true, true, true}
	if m.leader < 0 {
		m.electLocked()
	}
}

// WriteRaw stores value under the group's key without a lease, as another
// tool would.
func (m *Memory) WriteRaw(group string, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.keys[group]; k != nil {
		m.deleteKeyLocked(group, k)
	}
	m.putLocked(group, slices.Clone(value), 0)
}

// Cluster adapts m to the contract's Cluster interface.
func (m *Memory) Cluster() Cluster { return memCluster{m} }

type memCluster struct{ *Memory }

var _ Cluster = memCluster{}

func (c memCluster) Name() string                        { return "memory" }
func (c memCluster) Partition(t testing.TB, node string) { c.Memory.Partition(node) }
func (c memCluster) Heal(t testing.TB, node string)      { c.Memory.Heal(node) }
func (c memCluster) KillLeader(t testing.TB) string {
	t.Helper()
	name := c.Memory.KillLeader()
	if name == "" {
		t.Fatal("memory quorum: no leader to kill")
	}
	return name
}
func (c memCluster) Restart(t testing.TB, member string) {
	t.Helper()
	if err := c.Memory.Restart(member); err != nil {
		t.Fatal(err)
	}
}
func (c memCluster) StopAll(t testing.TB)  { c.Memory.StopAll() }
func (c memCluster) StartAll(t testing.TB) { c.Memory.StartAll() }
func (c memCluster) WriteRaw(t testing.TB, group string, value []byte) {
	c.Memory.WriteRaw(group, value)
}

func memberName(i int) string { return fmt.Sprintf("m%d", i) }

func (m *Memory) quorumLocked() bool {
	n := 0
	for _, up := range m.members {
		if up {
			n++
		}
	}
	return n >= 2
}

// loseLeaderLocked: no expiry without a leader; every watch breaks.
func (m *Memory) loseLeaderLocked() {
	m.leader = -1
	if m.election != nil {
		m.election.Stop()
		m.election = nil
	}
	for _, l := range m.leases {
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
	}
	for w := range m.watchers {
		w.broken = true
	}
}

func (m *Memory) elect() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.election = nil
	if m.leader < 0 && m.quorumLocked() {
		m.electLocked()
	}
}

// electLocked makes the first member that is up the leader: every lease
// restarts with its full TTL, broken watches of reachable nodes resync.
func (m *Memory) electLocked() {
	if m.election != nil {
		m.election.Stop()
		m.election = nil
	}
	m.leader = slices.Index(m.members[:], true)
	for _, l := range m.leases {
		m.armLocked(l)
	}
	m.resyncLocked(func(w *memWatch) bool { return m.cut[w.node] == nil })
}

// armLocked (re)starts l's expiry timer with its full TTL.
func (m *Memory) armLocked(l *memLease) {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.expires = time.Now().Add(l.ttl)
	var t *time.Timer
	t = time.AfterFunc(l.ttl, func() { m.expireTimer(l, t) })
	l.timer = t
}

func (m *Memory) expireTimer(l *memLease, t *time.Timer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[l.id] != l || l.timer != t {
		return // renewed, re-armed or gone since
	}
	m.dropLeaseLocked(l)
}

// dropLeaseLocked ends l (expiry or revoke) and deletes its keys.
func (m *Memory) dropLeaseLocked(l *memLease) {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	delete(m.leases, l.id)
	groups := make([]string, 0, len(l.keys))
	for g := range l.keys {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		if k := m.keys[g]; k != nil && k.lease == l.id {
			m.deleteKeyLocked(g, k)
		}
	}
}

func (m *Memory) putLocked(group string, value []byte, lease uint64) *memKey {
	m.rev++
	k := &memKey{value: value, epoch: m.rev, lease: lease}
	m.keys[group] = k
	if l := m.leases[lease]; l != nil {
		l.keys[group] = true
	}
	h := memHolder(group, k)
	m.broadcastLocked(quorum.Event{Type: quorum.EventPut, Group: group, Holder: h, Epoch: k.epoch, At: time.Now()})
	return k
}

func (m *Memory) deleteKeyLocked(group string, k *memKey) {
	m.rev++
	delete(m.keys, group)
	if l := m.leases[k.lease]; l != nil {
		delete(l.keys, group)
	}
	m.broadcastLocked(quorum.Event{Type: quorum.EventDelete, Group: group, Epoch: k.epoch, At: time.Now()})
}

func (m *Memory) broadcastLocked(ev quorum.Event) {
	for w := range m.watchers {
		if w.broken || (w.group != "" && w.group != ev.Group) {
			continue
		}
		w.push(ev)
	}
}

// resyncLocked mends the broken watches that pick selects.
func (m *Memory) resyncLocked(pick func(*memWatch) bool) {
	for w := range m.watchers {
		if !w.broken || !pick(w) {
			continue
		}
		w.broken = false
		now := time.Now()
		if w.group != "" {
			h := quorum.Holder{Group: w.group, TTLLeft: -1}
			if k := m.keys[w.group]; k != nil {
				h = memHolder(w.group, k)
			}
			w.push(quorum.Event{Type: quorum.EventResync, Group: w.group, Holder: h, At: now})
			continue
		}
		groups := make([]string, 0, len(m.keys))
		for g := range m.keys {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			w.push(quorum.Event{Type: quorum.EventResync, Group: g, Holder: memHolder(g, m.keys[g]), At: now})
		}
		w.push(quorum.Event{Type: quorum.EventResync, At: now})
	}
}

func (w *memWatch) push(ev quorum.Event) {
	w.queue = append(w.queue, ev)
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// memHolder turns a stored key into a Holder (TTLLeft -1: see ttlLeftLocked).
func memHolder(group string, k *memKey) quorum.Holder {
	h := quorum.Holder{Group: group, Epoch: k.epoch, TTLLeft: -1}
	r, err := quorum.ParseRecord(k.value)
	if err != nil {
		raw := k.value
		if len(raw) > rawPrefixLen {
			raw = raw[:rawPrefixLen]
		}
		h.Unknown, h.Raw = true, string(raw)
		return h
	}
	h.Node, h.Addr, h.Priority, h.AcquiredAt = r.Node, r.Addr, r.Priority, r.AcquiredAt
	return h
}

// rawPrefixLen bounds Holder.Raw for values that do not parse.
const rawPrefixLen = 64

func (m *Memory) ttlLeftLocked(k *memKey) time.Duration {
	l := m.leases[k.lease]
	if l == nil || l.timer == nil {
		return -1
	}
	return max(time.Until(l.expires), 0)
}

// memClient is one node's connection to the memory quorum.
type memClient struct {
	m    *Memory
	node string
	opts quorum.Options

	closeOnce sync.Once
	closed    chan struct{}
}

var _ quorum.Backend = (*memClient)(nil)

var errMemClosed = fmt.Errorf("memory quorum: %w", quorum.ErrClosed)

// do runs f on the server as one request: refused after Close, blocked
// while node is partitioned, failed while there is no leader.
func (c *memClient) do(ctx context.Context, op string, f func(m *Memory) error) error {
	select {
	case <-c.closed:
		return errMemClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory quorum: %s: %w", op, err)
	}
	// A request is a round trip: let other clients' goroutines run first,
	// or a releasing holder would always win its own next acquire.
	runtime.Gosched()
	m := c.m
	m.mu.Lock()
	if cut := m.cut[c.node]; cut != nil {
		m.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
		select {
		case <-rctx.Done():
			return fmt.Errorf("memory quorum: %s: %s is partitioned: %w", op, c.node, rctx.Err())
		case <-cut:
			return fmt.Errorf("memory quorum: %s: connection reset (partition healed)", op)
		case <-c.closed:
			return errMemClosed
		}
	}
	defer m.mu.Unlock()
	if m.leader < 0 {
		return fmt.Errorf("memory quorum: %s: no leader", op)
	}
	return f(m)
}

func (c *memClient) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// Open grants a lease with the options' TTL.
func (c *memClient) Open(ctx context.Context) (quorum.Session, error) {
	if err := c.opts.Validate(c.m.minTTL); err != nil {
		return nil, fmt.Errorf("memory quorum: %w", err)
	}
	var l *memLease
	sent := time.Now()
	err := c.do(ctx, "open", func(m *Memory) error {
		m.leaseSeq++
		l = &memLease{id: m.leaseSeq, node: c.node, ttl: c.opts.TTL, keys: map[string]bool{}}
		m.leases[l.id] = l
		m.armLocked(l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := &memSession{c: c, lease: l.id}
	s.Renewer = quorum.NewRenewer(c.opts, s.renew, sent, l.ttl)
	if !time.Now().Before(s.Deadline().Add(-c.opts.DemoteBudget)) {
		s.Close(ctx)
		return nil, fmt.Errorf("memory quorum: open: %w: acknowledged too late", quorum.ErrLost)
	}
	return s, nil
}

func (c *memClient) Inspect(ctx context.Context, group string) (quorum.Holder, bool, error) {
	h, ok := quorum.Holder{Group: group, TTLLeft: -1}, false
	err := c.do(ctx, "inspect", func(m *Memory) error {
		if k := m.keys[group]; k != nil {
			h, ok = memHolder(group, k), true
			h.TTLLeft = m.ttlLeftLocked(k)
		}
		return nil
	})
	return h, ok, err
}

func (c *memClient) List(ctx context.Context) ([]quorum.Holder, error) {
	var out []quorum.Holder
	err := c.do(ctx, "list", func(m *Memory) error {
		for g, k := range m.keys {
			h := memHolder(g, k)
			h.TTLLeft = m.ttlLeftLocked(k)
			out = append(out, h)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, err
}

// History returns the group's last HistoryLen grants, oldest first.
func (c *memClient) History(ctx context.Context, group string) ([]quorum.Holder, error) {
	var out []quorum.Holder
	err := c.do(ctx, "history", func(m *Memory) error {
		h := m.history[group]
		out = slices.Clone(h[max(len(h)-c.opts.HistoryLen, 0):])
		return nil
	})
	return out, err
}

// MarkOutdated records m while the group's key carries m.Epoch.
func (c *memClient) MarkOutdated(ctx context.Context, mk quorum.Mark) error {
	if err := quorum.CheckMark(mk); err != nil {
		return err
	}
	return c.do(ctx, "mark outdated", func(m *Memory) error {
		if k := m.keys[mk.Group]; k == nil || k.epoch != mk.Epoch {
			return fmt.Errorf("memory quorum: mark %s outdated in %s at epoch %d: %w", mk.Node, mk.Group, mk.Epoch, quorum.ErrNotOwner)
		}
		if m.marks[mk.Group] == nil {
			m.marks[mk.Group] = map[string]quorum.Mark{}
		}
		m.marks[mk.Group][mk.Node] = mk
		return nil
	})
}

// Outdated returns the group's marks sorted by node.
func (c *memClient) Outdated(ctx context.Context, group string) ([]quorum.Mark, error) {
	var out []quorum.Mark
	err := c.do(ctx, "outdated", func(m *Memory) error {
		for _, mk := range m.marks[group] {
			out = append(out, mk)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, err
}

// ClearOutdated removes node's mark in group.
func (c *memClient) ClearOutdated(ctx context.Context, group, node string) error {
	if err := quorum.CheckMarkNames(group, node); err != nil {
		return err
	}
	return c.do(ctx, "clear outdated", func(m *Memory) error {
		delete(m.marks[group], node)
		return nil
	})
}

// Watch registers at once, so no change after it returns is missed.
func (c *memClient) Watch(ctx context.Context, group string) (<-chan quorum.Event, error) {
	w := &memWatch{node: c.node, group: group, notify: make(chan struct{}, 1)}
	err := c.do(ctx, "watch", func(m *Memory) error {
		m.watchers[w] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(chan quorum.Event, 64)
	go c.watchLoop(ctx, w, out)
	return out, nil
}

func (c *memClient) watchLoop(ctx context.Context, w *memWatch, out chan<- quorum.Event) {
	m := c.m
	defer close(out)
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	for {
		m.mu.Lock()
		q := w.queue
		w.queue = nil
		m.mu.Unlock()
		for _, ev := range q {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-c.closed:
				return
			}
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		}
	}
}

// memSession is one lease at the memory quorum.
type memSession struct {
	*quorum.Renewer
	c     *memClient
	lease uint64

	closeOnce sync.Once
	closeErr  error
}

var _ quorum.Session = (*memSession)(nil)

func (s *memSession) ID() string { return fmt.Sprintf("mem-%d", s.lease) }

func (s *memSession) lostErr() error {
	return fmt.Errorf("memory quorum: lease %s: %w: not found at the server", s.ID(), quorum.ErrLost)
}

func (s *memSession) renew(ctx context.Context) (time.Duration, error) {
	var ttl time.Duration
	err := s.c.do(ctx, "renew", func(m *Memory) error {
		l := m.leases[s.lease]
		if l == nil {
			return s.lostErr()
		}
		m.armLocked(l)
		ttl = l.ttl
		return nil
	})
	return ttl, err
}

// Acquire creates the group's key under the session's lease if absent.
func (s *memSession) Acquire(ctx context.Context, group string, priority int) (quorum.Grant, error) {
	if group == "" || strings.ContainsAny(group, "/\x00") {
		return quorum.Grant{}, fmt.Errorf("memory quorum: bad group name %q", group)
	}
	if err := s.Err(); err != nil {
		return quorum.Grant{}, err
	}
	if !time.Now().Before(s.Deadline()) {
		return quorum.Grant{}, fmt.Errorf("memory quorum: lease %s: %w: local deadline passed", s.ID(), quorum.ErrLost)
	}
	opts := s.c.opts
	var epoch uint64
	err := s.c.do(ctx, "acquire", func(m *Memory) error {
		l := m.leases[s.lease]
		if l == nil {
			return s.lostErr()
		}
		if k := m.keys[group]; k != nil {
			if k.lease == s.lease {
				epoch = k.epoch // ours already: the grant stands
				return nil
			}
			h := memHolder(group, k)
			who := fmt.Sprintf("node %s, epoch %d", h.Node, h.Epoch)
			if h.Unknown {
				who = fmt.Sprintf("unknown value %q, epoch %d", h.Raw, h.Epoch)
			}
			return fmt.Errorf("memory quorum: acquire %q: %w (%s)", group, quorum.ErrHeld, who)
		}
		now := time.Now()
		val, err := json.Marshal(quorum.Record{V: quorum.RecordVersion, Node: opts.Node, Addr: opts.Addr,
			Priority: priority, Epoch: m.rev + 1, AcquiredAt: now.UTC()})
		if err != nil {
			return err
		}
		k := m.putLocked(group, val, s.lease)
		epoch = k.epoch
		h := append(m.history[group], quorum.Holder{Group: group, Node: opts.Node, Addr: opts.Addr,
			Priority: priority, Epoch: k.epoch, AcquiredAt: now.UTC(), TTLLeft: -1})
		m.history[group] = h[max(len(h)-memHistoryMax, 0):]
		return nil
	})
	if err != nil {
		if errors.Is(err, quorum.ErrLost) {
			s.Lose(err)
		}
		return quorum.Grant{}, err
	}
	return quorum.Grant{Group: group, Epoch: epoch, AcquiredAt: time.Now()}, nil
}

// Release deletes the group's key if it still carries g's epoch.
func (s *memSession) Release(ctx context.Context, g quorum.Grant) error {
	return s.c.do(ctx, "release", func(m *Memory) error {
		k := m.keys[g.Group]
		if k == nil || k.epoch != g.Epoch {
			return fmt.Errorf("memory quorum: release %q epoch %d: %w", g.Group, g.Epoch, quorum.ErrNotOwner)
		}
		m.deleteKeyLocked(g.Group, k)
		return nil
	})
}

// Close ends the session and revokes its lease, deleting its keys.
func (s *memSession) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.Lose(fmt.Errorf("memory quorum: lease %s: %w", s.ID(), quorum.ErrClosed))
		s.closeErr = s.c.do(ctx, "revoke", func(m *Memory) error {
			if l := m.leases[s.lease]; l != nil {
				m.dropLeaseLocked(l)
			}
			return nil
		})
	})
	return s.closeErr
}
