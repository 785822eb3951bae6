package raft

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/leasehold/leasehold/quorum"
)

// Command ops replicated through the log.
const (
	opOpen    = "open"
	opRenew   = "renew"
	opAcquire = "acquire"
	opRelease = "release"
	opClose   = "close"
	opExpire  = "expire"
	opMark    = "mark"   // an outdated mark, only under the group's epoch
	opUnmark  = "unmark" // clear an outdated mark
	opRaw     = "raw"    // test-only: a value written as another tool would
)

// maxHistory bounds the history kept per group whatever a client asks.
const maxHistory = 1000

// command is one log entry. It carries everything apply needs, so apply is
// deterministic on every voter (the acquirer's wall clock travels in it).
type command struct {
	Op         string        `json:"op"`
	Session    string        `json:"session,omitempty"`
	Node       string        `json:"node,omitempty"`
	Addr       string        `json:"addr,omitempty"`
	TTL        time.Duration `json:"ttl,omitempty"`
	Group      string        `json:"group,omitempty"`
	Priority   int           `json:"priority,omitempty"`
	AcquiredAt time.Time     `json:"acquired_at,omitzero"`
	// Epoch: release compares it; expire carries the index of the last
	// touch the leader's timer was armed for.
	Epoch      uint64 `json:"epoch,omitempty"`
	HistoryLen int    `json:"history_len,omitempty"`
	Raw        []byte `json:"raw,omitempty"`
	// Mark is mark's mark; unmark's Group and Node.
	Mark *quorum.Mark `json:"mark,omitempty"`
}

// applyResult is what FSM.Apply returns to the leader's Apply future.
type applyResult struct {
	Session string
	Epoch   uint64
	TTL     time.Duration
	Stale   bool // an expire that lost to a later touch
	Err     error
}

type session struct {
	ID   string        `json:"id"`
	Node string        `json:"node"`
	Addr string        `json:"addr"`
	TTL  time.Duration `json:"ttl"`
	// Touched is the log index of the open or last renew.
	Touched uint64 `json:"touched"`
}

type key struct {
	Value   []byte `json:"value"`
	Epoch   uint64 `json:"epoch"`
	Session string `json:"session,omitempty"` // empty for raw values
}

// state is the replicated state; it is also the snapshot format.
type state struct {
	Sessions map[string]*session `json:"sessions"`
	Keys     map[string]*key     `json:"keys"`
	History  map[string][]key    `json:"history"`
	// Marks are the outdated marks: group → node → mark (absent in
	// snapshots taken before marks existed).
	Marks map[string]map[string]quorum.Mark `json:"marks,omitempty"`
}

// watcher is one subscriber to FSM events.
type watcher struct {
	group string
	ch    chan quorum.Event
}

// fsm applies commands. Apply runs on raft's FSM goroutine; reads come from
// client handlers, hence the lock. Hooks tell the leader's expiry timers
// about sessions touched and dropped; they run outside the lock.
type fsm struct {
	mu       sync.RWMutex
	st       state
	watchers map[*watcher]struct{}

	onTouch func(id string, index uint64, ttl time.Duration)
	onDrop  func(id string)
	now     func() time.Time
}

func newFSM() *fsm {
	return &fsm{st: emptyState(), watchers: map[*watcher]struct{}{}, now: time.Now}
}

func emptyState() state {
	return state{Sessions: map[string]*session{}, Keys: map[string]*key{}, History: map[string][]key{},
		Marks: map[string]map[string]quorum.Mark{}}
}

var _ hraft.FSM = (*fsm)(nil)

// Apply implements raft.FSM.
func (f *fsm) Apply(l *hraft.Log) any {
	if l.Type != hraft.LogCommand {
		return nil
	}
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return applyResult{Err: fmt.Errorf("raft: bad command at %d: %w", l.Index, err)}
	}
	f.mu.Lock()
	res, events, touched, dropped := f.applyLocked(l.Index, c)
	for _, ev := range events {
		f.notifyLocked(ev)
	}
	f.mu.Unlock()
	if touched != nil && f.onTouch != nil {
		f.onTouch(touched.ID, touched.Touched, touched.TTL)
	}
	if dropped != "" && f.onDrop != nil {
		f.onDrop(dropped)
	}
	return res
}

func (f *fsm) applyLocked(index uint64, c command) (res applyResult, events []quorum.Event, touched *session, dropped string) {
	now := f.now()
	lost := func() applyResult {
		return applyResult{Err: fmt.Errorf("%w: session %s is gone", quorum.ErrLost, c.Session)}
	}
	switch c.Op {
	case opOpen:
		s := &session{ID: fmt.Sprintf("%d", index), Node: c.Node, Addr: c.Addr, TTL: c.TTL, Touched: index}
		f.st.Sessions[s.ID] = s
		cp := *s
		return applyResult{Session: s.ID, TTL: s.TTL}, nil, &cp, ""
	case opRenew:
		s, ok := f.st.Sessions[c.Session]
		if !ok {
			return lost(), nil, nil, ""
		}
		s.Touched = index
		cp := *s
		return applyResult{Session: s.ID, TTL: s.TTL}, nil, &cp, ""
	case opAcquire:
		s, ok := f.st.Sessions[c.Session]
		if !ok {
			return lost(), nil, nil, ""
		}
		if k, ok := f.st.Keys[c.Group]; ok {
			if k.Session == s.ID {
				// Ours already: a retry of an acquire whose answer was lost,
				// or a release that failed. The grant stands, same epoch.
				return applyResult{Epoch: k.Epoch, Session: s.ID}, nil, nil, ""
			}
			return applyResult{Epoch: k.Epoch, Err: fmt.Errorf("%w: group %s at epoch %d", quorum.ErrHeld, c.Group, k.Epoch)}, nil, nil, ""
		}
		rec := quorum.Record{V: quorum.RecordVersion, Node: s.Node, Addr: s.Addr, Priority: c.Priority, Epoch: index, AcquiredAt: c.AcquiredAt}
		val, err := json.Marshal(rec)
		if err != nil {
			return applyResult{Err: fmt.Errorf("raft: encode record: %w", err)}, nil, nil, ""
		}
		k := &key{Value: val, Epoch: index, Session: s.ID}
		f.st.Keys[c.Group] = k
		n := min(c.HistoryLen, maxHistory)
		h := append(f.st.History[c.Group], *k)
		if len(h) > n {
			h = append([]key(nil), h[len(h)-n:]...)
		}
		if len(h) == 0 {
			delete(f.st.History, c.Group)
		} else {
			f.st.History[c.Group] = h
		}
		ev := quorum.Event{Type: quorum.EventPut, Group: c.Group, Holder: holderOf(c.Group, k), At: now}
		return applyResult{Epoch: index, Session: s.ID}, []quorum.Event{ev}, nil, ""
	case opRelease:
		k, ok := f.st.Keys[c.Group]
		if !ok || k.Epoch != c.Epoch {
			return applyResult{Err: fmt.Errorf("%w: group %s epoch %d", quorum.ErrNotOwner, c.Group, c.Epoch)}, nil, nil, ""
		}
		delete(f.st.Keys, c.Group)
		ev := quorum.Event{Type: quorum.EventDelete, Group: c.Group, Epoch: k.Epoch, At: now}
		return applyResult{Epoch: k.Epoch}, []quorum.Event{ev}, nil, ""
	case opClose, opExpire:
		s, ok := f.st.Sessions[c.Session]
		if !ok {
			if c.Op == opClose {
				return lost(), nil, nil, ""
			}
			return applyResult{}, nil, nil, ""
		}
		if c.Op == opExpire && s.Touched > c.Epoch {
			// Renewed after the leader armed the timer that fired: stale.
			return applyResult{Session: s.ID, Epoch: s.Touched, TTL: s.TTL, Stale: true}, nil, nil, ""
		}
		delete(f.st.Sessions, s.ID)
		groups := make([]string, 0)
		for g, k := range f.st.Keys {
			if k.Session == s.ID {
				groups = append(groups, g)
			}
		}
		sort.Strings(groups)
		for _, g := range groups {
			events = append(events, quorum.Event{Type: quorum.EventDelete, Group: g, Epoch: f.st.Keys[g].Epoch, At: now})
			delete(f.st.Keys, g)
		}
		return applyResult{Session: s.ID}, events, nil, s.ID
	case opMark:
		m := c.Mark
		if m == nil {
			return applyResult{Err: fmt.Errorf("%w: mark without a mark", errBadRequest)}, nil, nil, ""
		}
		if k, ok := f.st.Keys[m.Group]; !ok || k.Epoch != m.Epoch {
			return applyResult{Err: fmt.Errorf("%w: mark %s outdated in %s at epoch %d", quorum.ErrNotOwner, m.Node, m.Group, m.Epoch)}, nil, nil, ""
		}
		if f.st.Marks[m.Group] == nil {
			f.st.Marks[m.Group] = map[string]quorum.Mark{}
		}
		f.st.Marks[m.Group][m.Node] = *m
		return applyResult{Epoch: m.Epoch}, nil, nil, ""
	case opUnmark:
		if c.Mark == nil {
			return applyResult{Err: fmt.Errorf("%w: unmark without a mark", errBadRequest)}, nil, nil, ""
		}
		if g := f.st.Marks[c.Mark.Group]; g != nil {
			delete(g, c.Mark.Node)
			if len(g) == 0 {
				delete(f.st.Marks, c.Mark.Group)
			}
		}
		return applyResult{}, nil, nil, ""
	case opRaw:
		k := &key{Value: append([]byte(nil), c.Raw...), Epoch: index}
		f.st.Keys[c.Group] = k
		ev := quorum.Event{Type: quorum.EventPut, Group: c.Group, Holder: holderOf(c.Group, k), At: now}
		return applyResult{Epoch: index}, []quorum.Event{ev}, nil, ""
	}
	return applyResult{Err: fmt.Errorf("raft: unknown op %q at %d", c.Op, index)}, nil, nil, ""
}

// rawPrefix bounds Holder.Raw for values that do not parse.
const rawPrefix = 64

// holderOf describes a key; TTLLeft is -1 (only the leader knows it).
func holderOf(group string, k *key) quorum.Holder {
	h := quorum.Holder{Group: group, Epoch: k.Epoch, TTLLeft: -1}
	rec, err := quorum.ParseRecord(k.Value)
	if err != nil {
		h.Unknown = true
		raw := k.Value
		if len(raw) > rawPrefix {
			raw = raw[:rawPrefix]
		}
		h.Raw = strings.ToValidUTF8(string(raw), "?") // stays valid through JSON
		return h
	}
	h.Node, h.Addr, h.Priority, h.AcquiredAt = rec.Node, rec.Addr, rec.Priority, rec.AcquiredAt
	return h
}

func (f *fsm) notifyLocked(ev quorum.Event) {
	for w := range f.watchers {
		if w.group != "" && w.group != ev.Group {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			// A slow watcher is cut off; its client resyncs.
			close(w.ch)
			delete(f.watchers, w)
		}
	}
}

// subscribe returns the current holders of group ("" = all) and a channel of
// later events, atomically. The channel is closed by unsubscribe, by
// overflow, or by dropWatchers.
func (f *fsm) subscribe(group string) ([]quorum.Holder, *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &watcher{group: group, ch: make(chan quorum.Event, 1024)}
	f.watchers[w] = struct{}{}
	return f.holdersLocked(group), w
}

func (f *fsm) unsubscribe(w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watchers[w]; ok {
		delete(f.watchers, w)
		close(w.ch)
	}
}

// dropWatchers ends every watch (on losing leadership).
func (f *fsm) dropWatchers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		close(w.ch)
		delete(f.watchers, w)
	}
}

func (f *fsm) holdersLocked(group string) []quorum.Holder {
	var out []quorum.Holder
	if group != "" {
		if k, ok := f.st.Keys[group]; ok {
			out = append(out, holderOf(group, k))
		}
		return out
	}
	groups := make([]string, 0, len(f.st.Keys))
	for g := range f.st.Keys {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		out = append(out, holderOf(g, f.st.Keys[g]))
	}
	return out
}

// holders reads the current holders (group "" = all) with the session of each.
func (f *fsm) holders(group string) ([]quorum.Holder, []string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	hs := f.holdersLocked(group)
	sess := make([]string, len(hs))
	for i, h := range hs {
		sess[i] = f.st.Keys[h.Group].Session
	}
	return hs, sess
}

func (f *fsm) history(group string) []quorum.Holder {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []quorum.Holder
	for _, k := range f.st.History[group] {
		out = append(out, holderOf(group, &k))
	}
	return out
}

// marks reads the group's outdated marks, sorted by node.
func (f *fsm) marks(group string) []quorum.Mark {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]quorum.Mark, 0, len(f.st.Marks[group]))
	for _, m := range f.st.Marks[group] {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// sessions lists the live sessions (for the leader's timers).
func (f *fsm) sessions() []session {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]session, 0, len(f.st.Sessions))
	for _, s := range f.st.Sessions {
		out = append(out, *s)
	}
	return out
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.st)
	if err != nil {
		return nil, fmt.Errorf("raft: snapshot: %w", err)
	}
	return snapshot(b), nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st := emptyState()
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("raft: restore: %w", err)
	}
	st = fillState(st)
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

func fillState(st state) state {
	if st.Sessions == nil {
		st.Sessions = map[string]*session{}
	}
	if st.Keys == nil {
		st.Keys = map[string]*key{}
	}
	if st.History == nil {
		st.History = map[string][]key{}
	}
	if st.Marks == nil {
		st.Marks = map[string]map[string]quorum.Mark{}
	}
	return st
}

type snapshot []byte

func (s snapshot) Persist(sink hraft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("raft: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
