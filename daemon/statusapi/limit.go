package statusapi

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connLimiter caps the open connections of a listener. At the cap, a new
// connection evicts the keep-alive connection idle the longest or, if there
// is none, the oldest connection accepted and still silent; when every
// connection is serving a request the new one is closed at once (shed).
// Its track method is the http.Server's ConnState hook.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	seq   uint64 // orders state changes: the lowest idle seq is the longest idle
	conns map[*limitedConn]struct{}

	evicted atomic.Uint64
	shed    atomic.Uint64
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
	// guarded by l.mu
	idle   bool // new (nothing read yet) or keep-alive idle: evictable
	served bool // served a request: a keep-alive idle one goes first
	seq    uint64
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, conns: map[*limitedConn]struct{}{}}
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, idle: true}
		var victim *limitedConn
		l.mu.Lock()
		if len(l.conns) >= l.max {
			for x := range l.conns {
				if !x.idle {
					continue
				}
				if victim == nil || x.served && !victim.served || x.served == victim.served && x.seq < victim.seq {
					victim = x
				}
			}
			if victim != nil {
				delete(l.conns, victim)
			}
		}
		full := len(l.conns) >= l.max
		if !full {
			l.seq++
			lc.seq = l.seq
			l.conns[lc] = struct{}{}
		}
		l.mu.Unlock()
		// Counted before the close: whoever sees the close sees the count.
		if victim != nil {
			l.evicted.Add(1)
			victim.Conn.Close() // the server's goroutine for it ends on the read error
		}
		if full {
			l.shed.Add(1)
			c.Close()
			continue
		}
		return lc, nil
	}
}

// track follows the server's view of each connection: new and idle ones
// may be evicted, active ones (reading or serving a request) may not.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateNew, http.StateIdle:
		l.seq++
		lc.idle, lc.seq = true, l.seq
	case http.StateActive:
		lc.idle, lc.served = false, true
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, lc)
	}
}

func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
