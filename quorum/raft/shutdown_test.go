package raft

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// freezer stalls a member's connections the way SIGSTOP does: its end
// neither reads nor writes, while the peers' kernels keep the sockets open.
type freezer struct {
	mu     sync.Mutex
	frozen bool
	thawed chan struct{}
}

func newFreezer() *freezer { return &freezer{thawed: make(chan struct{})} }

func (f *freezer) set(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on == f.frozen {
		return
	}
	f.frozen = on
	if on {
		f.thawed = make(chan struct{})
	} else {
		close(f.thawed)
	}
}

// wait blocks while frozen.
func (f *freezer) wait() {
	f.mu.Lock()
	on, ch := f.frozen, f.thawed
	f.mu.Unlock()
	if on {
		<-ch
	}
}

type frozenConn struct {
	net.Conn
	f *freezer
}

func (c frozenConn) Read(b []byte) (int, error) {
	c.f.wait()
	return c.Conn.Read(b)
}

func (c frozenConn) Write(b []byte) (int, error) {
	c.f.wait()
	return c.Conn.Write(b)
}

// TestShutdownWithFrozenFollower: a leader replicating to a frozen follower
// (SIGSTOP: connections open, nothing answered) must still shut down
// promptly. The daemon's stop path and the drills depend on it.
func TestShutdownWithFrozenFollower(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			v := startVoters(t, 3, nil)
			l := v.waitLeader()
			f := (l + 1) % 3
			fz := newFreezer()
			// Stall what the follower's member reads and writes from now on:
			// its open connections are wrapped at accept time, so restart it
			// with the freezer installed.
			v.stop(f)
			hw := v.cfgs[f].wrapStream
			v.cfgs[f].wrapStream = func(s hraft.StreamLayer) hraft.StreamLayer {
				return frozenStream{StreamLayer: hw(s), f: fz}
			}
			v.start(f)
			l = v.waitLeader()
			b := newBackend(t, v.clientAddrs(), nil, testOptions("n1"))
			ts := openTracked(t, b)
			acquireLoop(t, ts, "g1", 5*time.Second)
			fz.set(true)
			defer fz.set(false)
			// Keep the log moving while frozen (renewals go on).
			time.Sleep(2 * time.Second)
			done := make(chan struct{})
			go func() {
				v.stop(l)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				fz.set(false)
				<-done
				t.Fatalf("leader %s took over 15 s to shut down with a frozen follower", v.cfgs[l].ID)
			}
		})
	}
}

type frozenStream struct {
	hraft.StreamLayer
	f *freezer
}

func (s frozenStream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return frozenConn{Conn: c, f: s.f}, nil
}

func (s frozenStream) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return frozenConn{Conn: c, f: s.f}, nil
}
