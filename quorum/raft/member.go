package raft

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"

	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/leasehold/leasehold/quorum"
)

// Member is one raft voter: it replicates the lease state, runs the expiry
// timers while it leads, and serves the client API.
type Member struct {
	cfg Config
	log *slog.Logger

	fsm *fsm
	exp *expirer

	mu      sync.Mutex
	r       *hraft.Raft
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	ready   atomic.Bool // leader with an applied barrier: reads and watches are served
	applies atomic.Uint64
}

// NewMember checks cfg and builds a member; it starts nothing.
func NewMember(cfg Config, log *slog.Logger) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Member{
		cfg:     cfg,
		log:     log.With("member", cfg.ID),
		fsm:     newFSM(),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	m.exp = newExpirer(m.expire)
	m.fsm.onTouch = m.exp.touch
	m.fsm.onDrop = m.exp.drop
	return m, nil
}

// Leader returns the current leader's ID ("" if none known).
func (m *Member) Leader() string {
	m.mu.Lock()
	r := m.r
	m.mu.Unlock()
	if r == nil {
		return ""
	}
	_, id := r.LeaderWithID()
	return string(id)
}

// IsLeader reports whether this member leads and serves clients.
func (m *Member) IsLeader() bool { return m.ready.Load() }

// Applies counts the commands this member applied as leader (for benchmarks).
func (m *Member) Applies() uint64 { return m.applies.Load() }

// guard runs a raft call that reads the log, turning a panic of the log
// store (seen with raft-wal v0.4.0: "sealed segment has no index block",
// hashicorp/raft-wal#31, fixed in the pinned v0.4.1; a damaged disk can do
// the like) into an error that names the data directory.
func (m *Member) guard(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("raft: %s: the log in %s is unreadable (%v); this voter cannot start with it "+
				"(see docs/operating.md, \"A raft voter's log is unreadable\")", what, m.cfg.DataDir, p)
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("raft: %s: %w", what, err)
	}
	return nil
}

// Shutdown stops a running member and waits for Run to return.
func (m *Member) Shutdown() {
	m.once.Do(func() { close(m.stop) })
	m.mu.Lock()
	running := m.r != nil
	m.mu.Unlock()
	if running {
		<-m.stopped
	}
}

// Run starts raft (bootstrapping the configured voters if the data directory
// is empty), serves the client API and runs until ctx ends or Shutdown.
func (m *Member) Run(ctx context.Context) (err error) {
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: newSlogWriter(m.log, time.Now)})
	if err := os.MkdirAll(filepath.Join(m.cfg.DataDir, "wal"), 0o700); err != nil {
		return fmt.Errorf("raft: data dir: %w", err)
	}
	// WAL.Close leaves its meta store open (and locked): own and close it.
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	store, err := wal.Open(filepath.Join(m.cfg.DataDir, "wal"), wal.WithLogger(hlog), wal.WithMetaStore(meta))
	if err != nil {
		return fmt.Errorf("raft: open wal: %w", err)
	}
	defer store.Close()
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(m.cfg.DataDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("raft: snapshot store: %w", err)
	}
	stream, err := newStreamLayer(m.cfg)
	if err != nil {
		return err
	}
	if m.cfg.wrapStream != nil {
		stream = m.cfg.wrapStream(stream)
	}
	// Timeout bounds every RPC's I/O (and dials): without it an RPC to a
	// frozen peer (SIGSTOP, a hung VM: the connection stays open, nothing
	// answers) blocks forever, and raft's shutdown waits for it.
	// MaxRPCsInFlight 1 turns off pipelined replication: our entries are
	// tiny renewals, and the pipeline can wedge replication to a follower
	// that rejects an append (seen upstream with the default of 2).
	trans := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         3,
		Timeout:         m.cfg.rpcTimeout(),
		MaxRPCsInFlight: 1,
		Logger:          hlog,
	})
	defer trans.Close()

	rc := m.cfg.raftConfig()
	rc.Logger = hlog
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	var has bool
	if err := m.guard("read state", func() (err error) { has, err = hraft.HasExistingState(store, store, snaps); return err }); err != nil {
		return err
	}
	if !has {
		var conf hraft.Configuration
		for _, p := range m.cfg.Peers {
			conf.Servers = append(conf.Servers, hraft.Server{Suffrage: hraft.Voter, ID: hraft.ServerID(p.ID), Address: hraft.ServerAddress(p.Addr)})
		}
		if err := hraft.BootstrapCluster(rc, store, store, snaps, trans, conf); err != nil {
			return fmt.Errorf("raft: bootstrap: %w", err)
		}
		m.log.Info("bootstrapped voter set", "voters", len(conf.Servers))
	}

	ln, err := m.listenClient()
	if err != nil {
		return err
	}
	var r *hraft.Raft
	if err := m.guard("start", func() (err error) { r, err = hraft.NewRaft(rc, m.fsm, store, store, snaps, trans); return err }); err != nil {
		ln.Close()
		return err
	}
	m.mu.Lock()
	m.r = r
	m.mu.Unlock()
	defer close(m.stopped)

	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Warn("client api stopped", "err", err)
		}
	}()
	leadDone := make(chan struct{})
	leadStop := make(chan struct{})
	go func() {
		defer close(leadDone)
		m.watchLeadership(r, notify, leadStop)
	}()
	m.log.Info("member running", "bind", m.cfg.BindAddr, "client", m.cfg.ClientAddr, "witness", m.cfg.Witness)

	select {
	case <-ctx.Done():
	case <-m.stop:
	}
	m.handOffLeadership(r)
	m.ready.Store(false)
	m.exp.follow()
	m.fsm.dropWatchers()
	srv.Close()
	<-srvDone
	// Close the transport before waiting for raft's goroutines: one blocked
	// on an RPC to a frozen peer (connection open, nothing answered) would
	// otherwise hold the shutdown until the peer comes back.
	shut := r.Shutdown()
	trans.Close()
	if err := shut.Error(); err != nil {
		m.log.Warn("raft shutdown", "err", err)
	}
	close(leadStop)
	<-leadDone
	m.exp.follow()
	return nil
}

// handOffLeadership transfers leadership to another voter before a
// leader stops, so the group is served again within a round trip instead
// of after an election (heartbeat + election timeouts). Bounded: a transfer
// that does not finish in time leaves the election to happen as after a
// crash.
func (m *Member) handOffLeadership(r *hraft.Raft) {
	if r.State() != hraft.Leader {
		return
	}
	f := r.LeadershipTransfer()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	t := time.NewTimer(2 * (m.cfg.HeartbeatTimeout + m.cfg.ElectionTimeout))
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			m.log.Warn("leadership transfer before stopping failed", "err", err)
			return
		}
		m.log.Info("leadership handed off before stopping")
	case <-t.C:
		m.log.Warn("leadership transfer before stopping timed out")
	}
}

func (m *Member) listenClient() (net.Listener, error) {
	ln, err := net.Listen("tcp", m.cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("raft: client listen: %w", err)
	}
	if m.cfg.wrapListener != nil {
		ln = m.cfg.wrapListener(ln)
	}
	if m.cfg.TLS != nil {
		tc, err := m.cfg.TLS.serverConfig()
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// watchLeadership follows raft's leadership notifications. On gaining it,
// a barrier makes the FSM current before reads, watches and expiry timers
// start; on losing it, timers stop and watches end (clients resync).
func (m *Member) watchLeadership(r *hraft.Raft, notify <-chan bool, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case leader := <-notify:
			if !leader {
				m.ready.Store(false)
				m.exp.follow()
				m.fsm.dropWatchers()
				m.log.Info("lost leadership")
				continue
			}
			start := time.Now()
			if err := r.Barrier(10 * m.cfg.ElectionTimeout).Error(); err != nil {
				m.log.Warn("leader barrier failed", "err", err)
				continue
			}
			if r.State() != hraft.Leader {
				continue
			}
			m.exp.lead(m.fsm.sessions)
			m.ready.Store(true)
			m.log.Info("leading", "barrier", time.Since(start))
		}
	}
}

// expire is the leader's timer callback.
func (m *Member) expire(id string, touched uint64) {
	m.mu.Lock()
	r := m.r
	m.mu.Unlock()
	if r == nil || r.State() != hraft.Leader {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*m.cfg.ElectionTimeout)
	defer cancel()
	res, err := m.apply(ctx, command{Op: opExpire, Session: id, Epoch: touched})
	switch {
	case err != nil:
		m.log.Warn("expire failed; retrying", "session", id, "err", err)
		m.exp.retry(id, touched, m.cfg.HeartbeatTimeout)
	case res.Stale:
		m.exp.stale(id, touched, res.Epoch, res.TTL)
	default:
		m.log.Info("session expired", "session", id)
	}
}

// apply replicates c and waits for it to be applied, at most until ctx ends.
func (m *Member) apply(ctx context.Context, c command) (applyResult, error) {
	m.mu.Lock()
	r := m.r
	m.mu.Unlock()
	if r == nil || r.State() != hraft.Leader {
		return applyResult{}, errNotLeader
	}
	b, err := json.Marshal(c)
	if err != nil {
		return applyResult{}, fmt.Errorf("raft: encode command: %w", err)
	}
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return applyResult{}, context.DeadlineExceeded
	}
	f := r.Apply(b, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		switch {
		case errors.Is(err, hraft.ErrNotLeader):
			return applyResult{}, fmt.Errorf("%w: %v", errNotLeader, err)
		case errors.Is(err, hraft.ErrLeadershipLost):
			return applyResult{}, fmt.Errorf("%w: %v", errMayHaveApplied, err)
		case err != nil:
			return applyResult{}, fmt.Errorf("raft: apply %s: %w", c.Op, err)
		}
		m.applies.Add(1)
		res, _ := f.Response().(applyResult)
		return res, res.Err
	case <-ctx.Done():
		return applyResult{}, fmt.Errorf("raft: apply %s: %w", c.Op, ctx.Err())
	}
}

// readable checks that this member may serve a linearizable read: it leads,
// has applied its barrier, and a quorum still confirms it.
func (m *Member) readable() error {
	if !m.ready.Load() {
		return errNotLeader
	}
	m.mu.Lock()
	r := m.r
	m.mu.Unlock()
	if err := r.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", errNotLeader, err)
	}
	return nil
}

// writeRaw stores value under group with no session (tests only).
func (m *Member) writeRaw(ctx context.Context, group string, value []byte) error {
	_, err := m.apply(ctx, command{Op: opRaw, Group: group, Raw: value})
	return err
}

func (m *Member) handler() http.Handler {
	mux := http.NewServeMux()
	op := func(name string, f func(ctx context.Context, req wireRequest) (wireResponse, error)) {
		mux.HandleFunc("POST /v1/"+name, func(w http.ResponseWriter, hr *http.Request) {
			var req wireRequest
			var resp wireResponse
			var err error
			if derr := json.NewDecoder(hr.Body).Decode(&req); derr != nil {
				err = fmt.Errorf("%w: %v", errBadRequest, derr)
			} else {
				timeout := req.Timeout
				if timeout <= 0 || timeout > 30*time.Second {
					timeout = 5 * time.Second
				}
				ctx, cancel := context.WithTimeout(hr.Context(), timeout)
				resp, err = f(ctx, req)
				cancel()
			}
			if err != nil {
				resp = wireResponse{Code: codeOf(err), Error: err.Error()}
				if resp.Code == codeNotLeader || resp.Code == codeMayHave {
					resp.Leader = m.leaderClientAddr()
				}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(resp)
		})
	}
	op("open", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Node == "" {
			return wireResponse{}, fmt.Errorf("%w: node must be set", errBadRequest)
		}
		if err := m.cfg.ValidateTTL(req.TTL); err != nil {
			return wireResponse{}, fmt.Errorf("%w: %v", errBadRequest, err)
		}
		res, err := m.apply(ctx, command{Op: opOpen, Node: req.Node, Addr: req.Addr, TTL: req.TTL})
		return wireResponse{Session: res.Session, TTL: res.TTL}, err
	})
	op("renew", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		res, err := m.apply(ctx, command{Op: opRenew, Session: req.Session})
		return wireResponse{Session: res.Session, TTL: res.TTL}, err
	})
	op("acquire", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Group == "" {
			return wireResponse{}, fmt.Errorf("%w: group must be set", errBadRequest)
		}
		res, err := m.apply(ctx, command{Op: opAcquire, Session: req.Session, Group: req.Group,
			Priority: req.Priority, AcquiredAt: req.AcquiredAt, HistoryLen: req.HistoryLen})
		return wireResponse{Epoch: res.Epoch}, err
	})
	op("release", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		res, err := m.apply(ctx, command{Op: opRelease, Group: req.Group, Epoch: req.Epoch})
		return wireResponse{Epoch: res.Epoch}, err
	})
	op("close", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		_, err := m.apply(ctx, command{Op: opClose, Session: req.Session})
		return wireResponse{}, err
	})
	op("inspect", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Group == "" {
			return wireResponse{}, fmt.Errorf("%w: group must be set", errBadRequest)
		}
		return m.read(req.Group)
	})
	op("list", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		return m.read("")
	})
	op("history", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if err := m.readable(); err != nil {
			return wireResponse{}, err
		}
		return wireResponse{Holders: m.fsm.history(req.Group)}, nil
	})
	op("mark", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Mark == nil {
			return wireResponse{}, fmt.Errorf("%w: mark must be set", errBadRequest)
		}
		if err := quorum.CheckMark(*req.Mark); err != nil {
			return wireResponse{}, fmt.Errorf("%w: %v", errBadRequest, err)
		}
		_, err := m.apply(ctx, command{Op: opMark, Mark: req.Mark})
		return wireResponse{}, err
	})
	op("unmark", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Mark == nil || req.Mark.Group == "" || req.Mark.Node == "" {
			return wireResponse{}, fmt.Errorf("%w: the mark's group and node must be set", errBadRequest)
		}
		_, err := m.apply(ctx, command{Op: opUnmark, Mark: &quorum.Mark{Group: req.Mark.Group, Node: req.Mark.Node}})
		return wireResponse{}, err
	})
	op("outdated", func(ctx context.Context, req wireRequest) (wireResponse, error) {
		if req.Group == "" {
			return wireResponse{}, fmt.Errorf("%w: group must be set", errBadRequest)
		}
		if err := m.readable(); err != nil {
			return wireResponse{}, err
		}
		return wireResponse{Marks: m.fsm.marks(req.Group)}, nil
	})
	mux.HandleFunc("GET /v1/watch", m.serveWatch)
	return mux
}

func (m *Member) read(group string) (wireResponse, error) {
	if err := m.readable(); err != nil {
		return wireResponse{}, err
	}
	hs, sess := m.fsm.holders(group)
	for i := range hs {
		if sess[i] != "" {
			hs[i].TTLLeft = m.exp.left(sess[i])
		}
	}
	return wireResponse{Holders: hs}, nil
}

// watchPing is how often an idle watch stream carries a keep-alive line.
const watchPing = 200 * time.Millisecond

func (m *Member) serveWatch(w http.ResponseWriter, hr *http.Request) {
	if err := m.readable(); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMisdirectedRequest)
		json.NewEncoder(w).Encode(wireResponse{Code: codeOf(err), Error: err.Error(), Leader: m.leaderClientAddr()})
		return
	}
	group := hr.URL.Query().Get("group")
	holders, sub := m.fsm.subscribe(group)
	defer m.fsm.unsubscribe(sub)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	send := func(l wireEventLine) bool {
		if err := enc.Encode(l); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send(wireEventLine{Kind: wireSnapshot, Holders: holders}) {
		return
	}
	ping := time.NewTicker(watchPing)
	defer ping.Stop()
	for {
		select {
		case <-hr.Context().Done():
			return
		case <-m.stop:
			return
		case ev, ok := <-sub.ch:
			if !ok {
				return
			}
			if !send(wireEventLine{Kind: wireEvent, Event: &ev}) {
				return
			}
		case <-ping.C:
			if !send(wireEventLine{Kind: wirePing}) {
				return
			}
		}
	}
}

func (m *Member) leaderClientAddr() string {
	id := m.Leader()
	if id == "" || id == m.cfg.ID {
		return ""
	}
	return m.cfg.clientAddrOf(id)
}
