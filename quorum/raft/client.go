package raft

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// MinTTL is the smallest TTL a client accepts before asking the group; each
// member also enforces its Config.MinTTL when a session opens.
const MinTTL = 100 * time.Millisecond

// BackendOption adjusts a Backend.
type BackendOption func(*Backend)

// WithDialer replaces the TCP dialer used to reach members (the TLS
// handshake, if any, runs over the returned connection).
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) BackendOption {
	return func(b *Backend) { b.dial = dial }
}

// Backend is a client of the raft group; it implements quorum.Backend.
type Backend struct {
	addrs []string
	opts  quorum.Options
	log   *slog.Logger
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	hc    *http.Client
	// stream has no overall timeout (for watches).
	stream *http.Client
	scheme string

	mu     sync.Mutex
	leader string // last known leader client address
	next   int

	requests atomic.Uint64
	closed   chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

var _ quorum.Backend = (*Backend)(nil)

// NewBackend returns a client of the members at clientAddrs (the local
// member first: it is tried first). It connects lazily.
func NewBackend(clientAddrs []string, tlsCfg *TLSConfig, opts quorum.Options, log *slog.Logger, bopts ...BackendOption) (*Backend, error) {
	if len(clientAddrs) == 0 {
		return nil, errors.New("raft: no client addresses")
	}
	if err := opts.Validate(MinTTL); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{
		addrs:  append([]string(nil), clientAddrs...),
		opts:   opts,
		log:    log,
		scheme: "http",
		closed: make(chan struct{}),
	}
	for _, o := range bopts {
		o(b)
	}
	if b.dial == nil {
		d := &net.Dialer{}
		b.dial = d.DialContext
	}
	tr := &http.Transport{
		DialContext:         b.dial,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: opts.RequestTimeout,
	}
	if tlsCfg != nil {
		tc, err := tlsCfg.clientConfig()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
		b.scheme = "https"
	}
	b.hc = &http.Client{Transport: tr}
	b.stream = &http.Client{Transport: tr}
	return b, nil
}

// Requests counts the requests sent to members (watch streams included).
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Close ends watches; sessions are not closed (their leases expire).
func (b *Backend) Close() error {
	b.once.Do(func() { close(b.closed) })
	b.wg.Wait()
	b.hc.Transport.(*http.Transport).CloseIdleConnections()
	return nil
}

// target picks the address to try: the known leader, else the next address.
func (b *Backend) target() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.leader != "" {
		return b.leader
	}
	return b.addrs[b.next%len(b.addrs)]
}

// miss records that addr failed or is not the leader (hint: the leader it named).
func (b *Backend) miss(addr, hint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if hint != "" && hint != addr {
		b.leader = hint
		return
	}
	if b.leader == addr {
		b.leader = ""
	}
	if b.addrs[b.next%len(b.addrs)] == addr {
		b.next++
	}
}

func (b *Backend) found(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leader = addr
}

// call sends one request to the leader, following redirects and moving on
// from unreachable members, until ctx ends. A definite answer (success or a
// quorum sentinel) is returned at once.
func (b *Backend) call(ctx context.Context, op string, req wireRequest) (wireResponse, error) {
	resp, _, err := b.callRetried(ctx, op, req)
	return resp, err
}

// callRetried is call that also says whether an earlier attempt may have
// been applied: it failed after the request could have reached a leader
// (the leader died, the connection broke), so the answer comes from a retry
// that may see that attempt's effect.
func (b *Backend) callRetried(ctx context.Context, op string, req wireRequest) (wireResponse, bool, error) {
	retried := false
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	var last error
	for attempt := 0; ; attempt++ {
		select {
		case <-b.closed:
			return wireResponse{}, retried, fmt.Errorf("raft: %s: %w", op, quorum.ErrClosed)
		default:
		}
		if err := ctx.Err(); err != nil {
			if last == nil {
				last = err
			}
			return wireResponse{}, retried, fmt.Errorf("raft: %s: %w (last: %v)", op, err, last)
		}
		addr := b.target()
		resp, err := b.send(ctx, addr, op, req)
		switch {
		case err == nil:
			if rerr := errOf(resp); rerr != nil {
				if errors.Is(rerr, errNotLeader) || errors.Is(rerr, errUnavailable) || errors.Is(rerr, errMayHaveApplied) {
					b.miss(addr, resp.Leader)
					last = rerr
					// A command whose leader lost its leadership while
					// committing it may still be committed by the next.
					retried = retried || errors.Is(rerr, errMayHaveApplied)
					break
				}
				b.found(addr)
				return resp, retried, fmt.Errorf("raft: %s: %w", op, rerr)
			}
			b.found(addr)
			return resp, retried, nil
		default:
			b.miss(addr, "")
			last = err
			retried = retried || mayHaveArrived(err)
		}
		// Pause briefly once every member was tried, so an election can end.
		if attempt%len(b.addrs) == len(b.addrs)-1 {
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// mayHaveArrived reports whether a failed send could have delivered the
// request: anything but a refused or failed dial.
func mayHaveArrived(err error) bool {
	var oe *net.OpError
	return !errors.As(err, &oe) || oe.Op != "dial"
}

func (b *Backend) send(ctx context.Context, addr, op string, req wireRequest) (wireResponse, error) {
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(d)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return wireResponse{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, b.scheme+"://"+addr+"/v1/"+op, bytes.NewReader(body))
	if err != nil {
		return wireResponse{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	b.requests.Add(1)
	res, err := b.hc.Do(hr)
	if err != nil {
		return wireResponse{}, err
	}
	defer res.Body.Close()
	var resp wireResponse
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil {
		return wireResponse{}, fmt.Errorf("raft: %s %s: %w", op, addr, err)
	}
	return resp, nil
}

// Open starts this node's session.
func (b *Backend) Open(ctx context.Context) (quorum.Session, error) {
	sent := time.Now()
	resp, err := b.call(ctx, "open", wireRequest{Node: b.opts.Node, Addr: b.opts.Addr, TTL: b.opts.TTL})
	if err != nil {
		return nil, err
	}
	s := &Session{b: b, id: resp.Session}
	s.Renewer = quorum.NewRenewer(b.opts, s.renew, sent, resp.TTL)
	return s, nil
}

// Inspect reads one group.
func (b *Backend) Inspect(ctx context.Context, group string) (quorum.Holder, bool, error) {
	resp, err := b.call(ctx, "inspect", wireRequest{Group: group})
	if err != nil {
		return quorum.Holder{}, false, err
	}
	if len(resp.Holders) == 0 {
		return quorum.Holder{}, false, nil
	}
	return resp.Holders[0], true, nil
}

// List reads every held group.
func (b *Backend) List(ctx context.Context) ([]quorum.Holder, error) {
	resp, err := b.call(ctx, "list", wireRequest{})
	return resp.Holders, err
}

// History returns the last grants of a group, oldest first.
func (b *Backend) History(ctx context.Context, group string) ([]quorum.Holder, error) {
	resp, err := b.call(ctx, "history", wireRequest{Group: group})
	return resp.Holders, err
}

// MarkOutdated records m; the leader applies it only while the group's key
// carries m.Epoch. A retried mark is harmless (the same mark again).
func (b *Backend) MarkOutdated(ctx context.Context, m quorum.Mark) error {
	if err := quorum.CheckMark(m); err != nil {
		return err
	}
	_, err := b.call(ctx, "mark", wireRequest{Mark: &m})
	if err != nil {
		return fmt.Errorf("raft: mark %s outdated in %q: %w", m.Node, m.Group, err)
	}
	return nil
}

// Outdated reads the group's marks, sorted by node.
func (b *Backend) Outdated(ctx context.Context, group string) ([]quorum.Mark, error) {
	resp, err := b.call(ctx, "outdated", wireRequest{Group: group})
	if err != nil {
		return nil, fmt.Errorf("raft: outdated marks of %q: %w", group, err)
	}
	return resp.Marks, nil
}

// ClearOutdated removes node's mark in group.
func (b *Backend) ClearOutdated(ctx context.Context, group, node string) error {
	if err := quorum.CheckMarkNames(group, node); err != nil {
		return err
	}
	if _, err := b.call(ctx, "unmark", wireRequest{Mark: &quorum.Mark{Group: group, Node: node}}); err != nil {
		return fmt.Errorf("raft: clear the outdated mark of %s in %q: %w", node, group, err)
	}
	return nil
}

// Session is one node's lease at the raft group.
type Session struct {
	*quorum.Renewer
	b  *Backend
	id string
}

var _ quorum.Session = (*Session)(nil)

// ID is the session's id: the log index of its open.
func (s *Session) ID() string { return s.id }

func (s *Session) renew(ctx context.Context) (time.Duration, error) {
	resp, err := s.b.call(ctx, "renew", wireRequest{Session: s.id})
	return resp.TTL, err
}

// Acquire creates the group's key for this session if it is absent.
func (s *Session) Acquire(ctx context.Context, group string, priority int) (quorum.Grant, error) {
	if err := s.Err(); err != nil {
		return quorum.Grant{}, err
	}
	resp, err := s.b.call(ctx, "acquire", wireRequest{Session: s.id, Group: group, Priority: priority,
		AcquiredAt: time.Now(), HistoryLen: s.b.opts.HistoryLen})
	if err != nil {
		if errors.Is(err, quorum.ErrLost) {
			s.Lose(err)
		}
		return quorum.Grant{}, err
	}
	return quorum.Grant{Group: group, Epoch: resp.Epoch, AcquiredAt: time.Now()}, nil
}

// Release deletes the group's key if it still carries g's epoch. If an
// attempt may have been applied before a retry (the leader died under it),
// "not owner" from the retry is that attempt's effect: the key no longer
// carries g's epoch, which is all a release asks.
func (s *Session) Release(ctx context.Context, g quorum.Grant) error {
	_, retried, err := s.b.callRetried(ctx, "release", wireRequest{Session: s.id, Group: g.Group, Epoch: g.Epoch})
	if retried && errors.Is(err, quorum.ErrNotOwner) {
		return nil
	}
	return err
}

// Close ends the session at the group (deleting its keys) and locally.
func (s *Session) Close(ctx context.Context) error {
	_, err := s.b.call(ctx, "close", wireRequest{Session: s.id})
	s.Lose(fmt.Errorf("raft: session %s: %w", s.id, quorum.ErrClosed))
	if errors.Is(err, quorum.ErrLost) {
		return nil
	}
	return err
}

// Watch streams changes of one group ("" = all) until ctx ends.
func (b *Backend) Watch(ctx context.Context, group string) (<-chan quorum.Event, error) {
	select {
	case <-b.closed:
		return nil, fmt.Errorf("raft: watch: %w", quorum.ErrClosed)
	default:
	}
	out := make(chan quorum.Event, 64)
	ctx, cancel := context.WithCancel(ctx)
	w := &watchLoop{b: b, group: group, out: out, known: map[string]bool{}, ready: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		defer close(out)
		w.run(ctx)
	}()
	go func() {
		select {
		case <-b.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Return once the stream is established, so no change after Watch
	// returns is missed; if that takes too long, the first snapshot is
	// reported as EventResync instead.
	t := time.NewTimer(b.opts.RequestTimeout)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-t.C:
		w.mu.Lock()
		w.late = !w.synced
		w.mu.Unlock()
	case <-ctx.Done():
	}
	return out, nil
}

type watchLoop struct {
	b     *Backend
	group string
	out   chan<- quorum.Event
	known map[string]bool // groups seen held: a resync reports them free if gone
	ready chan struct{}   // closed after the first snapshot

	mu     sync.Mutex
	synced bool // a first snapshot was taken
	late   bool // Watch returned before it: report it as a resync
}

func (w *watchLoop) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		w.b.log.Debug("raft watch lost; resyncing", "group", w.group, "err", err)
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (w *watchLoop) emit(ctx context.Context, ev quorum.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// stream runs one watch stream against the leader.
func (w *watchLoop) stream(ctx context.Context) error {
	addr := w.b.target()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url := w.b.scheme + "://" + addr + "/v1/watch?group=" + w.group
	hr, err := http.NewRequestWithContext(sctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The stream must show life every few pings, or it is presumed dead.
	idle := 5 * watchPing
	dog := time.AfterFunc(w.b.opts.RequestTimeout+idle, cancel)
	defer dog.Stop()
	w.b.requests.Add(1)
	res, err := w.b.stream.Do(hr)
	if err != nil {
		w.b.miss(addr, "")
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var resp wireResponse
		json.NewDecoder(res.Body).Decode(&resp)
		w.b.miss(addr, resp.Leader)
		return errOf(resp)
	}
	w.b.found(addr)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		dog.Reset(idle)
		var l wireEventLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("raft: watch: %w", err)
		}
		switch l.Kind {
		case wireSnapshot:
			if !w.resync(ctx, l.Holders) {
				return ctx.Err()
			}
		case wireEvent:
			if l.Event == nil {
				continue
			}
			ev := *l.Event
			switch ev.Type {
			case quorum.EventPut:
				w.known[ev.Group] = true
			case quorum.EventDelete:
				delete(w.known, ev.Group)
			}
			if !w.emit(ctx, ev) {
				return ctx.Err()
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("raft: watch stream ended")
}

// resync handles a stream's opening snapshot: the first is the baseline;
// later ones follow a lost stream and are reported as EventResync, including
// groups seen held before that are now free.
func (w *watchLoop) resync(ctx context.Context, hs []quorum.Holder) bool {
	now := time.Now()
	w.mu.Lock()
	first := !w.synced && !w.late
	if !w.synced {
		close(w.ready)
	}
	w.synced = true
	w.mu.Unlock()
	held := map[string]bool{}
	for _, h := range hs {
		held[h.Group] = true
	}
	if !first {
		for _, h := range hs {
			if !w.emit(ctx, quorum.Event{Type: quorum.EventResync, Group: h.Group, Holder: h, At: now}) {
				return false
			}
		}
		free := map[string]bool{}
		for g := range w.known {
			if !held[g] {
				free[g] = true
			}
		}
		if w.group != "" && !held[w.group] {
			free[w.group] = true
		}
		for g := range free {
			if !w.emit(ctx, quorum.Event{Type: quorum.EventResync, Group: g, Holder: quorum.Holder{Group: g}, At: now}) {
				return false
			}
		}
	}
	w.known = held
	return true
}
