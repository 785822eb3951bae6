package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/test/freeport"
)

// hole cuts connections: while on, dials fail, accepted connections are
// closed at once and every tracked connection was closed when it went on.
type hole struct {
	mu    sync.Mutex
	on    bool
	conns map[*holeConn]struct{}
}

func newHole() *hole { return &hole{conns: map[*holeConn]struct{}{}} }

type holeConn struct {
	net.Conn
	h *hole
}

func (c *holeConn) Close() error {
	c.h.mu.Lock()
	delete(c.h.conns, c)
	c.h.mu.Unlock()
	return c.Conn.Close()
}

func (h *hole) set(on bool) {
	h.mu.Lock()
	h.on = on
	var cs []*holeConn
	if on {
		for c := range h.conns {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

var errHole = errors.New("test: partitioned")

// track wraps c, or closes it if the hole is on.
func (h *hole) track(c net.Conn) (net.Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.on {
		c.Close()
		return nil, errHole
	}
	hc := &holeConn{Conn: c, h: h}
	h.conns[hc] = struct{}{}
	return hc, nil
}

func (h *hole) isOn() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.on
}

type holeListener struct {
	net.Listener
	h *hole
}

func (l holeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if hc, err := l.h.track(c); err == nil {
			return hc, nil
		}
	}
}

type holeStream struct {
	hraft.StreamLayer
	h *hole
}

func (s holeStream) Accept() (net.Conn, error) {
	return holeListener{Listener: s.StreamLayer, h: s.h}.Accept()
}

func (s holeStream) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.h.isOn() {
		return nil, errHole
	}
	c, err := s.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return s.h.track(c)
}

func (h *hole) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if h.isOn() {
		return nil, errHole
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return h.track(c)
}

// voters is a raft group of real members over TCP on 127.0.0.1.
type voters struct {
	t       testing.TB
	cfgs    []Config
	holes   []*hole // per member: transport and client listener
	members []*Member
	done    []chan error
	log     *slog.Logger
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LEASEHOLD_RAFT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startVoters(t testing.TB, n int, tlsCfg *TLSConfig) *voters {
	t.Helper()
	v := &voters{t: t, log: testLogger(t)}
	var peers []Peer
	for i := range n {
		peers = append(peers, Peer{ID: fmt.Sprintf("m%d", i+1), Addr: freeport.Addr(t), ClientAddr: freeport.Addr(t)})
	}
	dir := t.TempDir()
	for i, p := range peers {
		h := newHole()
		cfg := DefaultConfig()
		cfg.ID, cfg.BindAddr, cfg.ClientAddr = p.ID, p.Addr, p.ClientAddr
		cfg.Peers = peers
		cfg.DataDir = filepath.Join(dir, p.ID)
		cfg.TLS = tlsCfg
		cfg.Witness = i == n-1
		cfg.wrapStream = func(s hraft.StreamLayer) hraft.StreamLayer { return holeStream{StreamLayer: s, h: h} }
		cfg.wrapListener = func(l net.Listener) net.Listener { return holeListener{Listener: l, h: h} }
		v.cfgs = append(v.cfgs, cfg)
		v.holes = append(v.holes, h)
	}
	v.members = make([]*Member, n)
	v.done = make([]chan error, n)
	for i := range n {
		v.start(i)
	}
	t.Cleanup(v.stopAll)
	v.waitLeader()
	return v
}

func (v *voters) start(i int) {
	v.t.Helper()
	m, err := NewMember(v.cfgs[i], v.log)
	if err != nil {
		v.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	v.members[i], v.done[i] = m, done
}

func (v *voters) stop(i int) {
	if v.members[i] == nil {
		return
	}
	v.members[i].Shutdown()
	if err := <-v.done[i]; err != nil {
		v.t.Errorf("member %s: %v", v.cfgs[i].ID, err)
	}
	v.members[i] = nil
}

func (v *voters) stopAll() {
	for i := range v.members {
		v.stop(i)
	}
}

func (v *voters) clientAddrs() []string {
	var out []string
	for _, c := range v.cfgs {
		out = append(out, c.ClientAddr)
	}
	return out
}

// leader returns the index of the serving leader, -1 if none.
func (v *voters) leader() int {
	for i, m := range v.members {
		if m != nil && m.IsLeader() {
			return i
		}
	}
	return -1
}

func (v *voters) waitLeader() int {
	v.t.Helper()
	var l int
	eventually(v.t, 10*time.Second, "a leader", func() bool { l = v.leader(); return l >= 0 })
	return l
}

// eventually polls cond every 5 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	end := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-end:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func testOptions(node string) quorum.Options {
	o := quorum.ScaledOptions(500 * time.Millisecond)
	o.Node = node
	o.Addr = "192.0.2.1"
	return o
}

func scaled(node string, ttl time.Duration) quorum.Options {
	o := quorum.ScaledOptions(ttl)
	o.Node = node
	return o
}

func newBackend(t testing.TB, addrs []string, tlsCfg *TLSConfig, opts quorum.Options, bopts ...BackendOption) *Backend {
	t.Helper()
	b, err := NewBackend(addrs, tlsCfg, opts, testLogger(t), bopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openRun opens a session and renews it until the test ends.
func openRun(t testing.TB, b quorum.Backend) quorum.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return s
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
