package quorumtest

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a loopback TCP forwarder in front of one quorum member, used to cut
// a single client off. Blackhole stalls every connection, existing and new:
// bytes are read and dropped in both directions, new connections are accepted
// but never forwarded. Heal closes the stalled connections (their streams are
// corrupt) and forwards new ones again.
type Proxy struct {
	ln     net.Listener
	target string

	mu         sync.Mutex
	blackholed bool
	down       bool
	closed     bool
	conns      map[*proxyConn]struct{}
	wg         sync.WaitGroup
}

type proxyConn struct {
	client, upstream net.Conn // upstream is nil for a stalled accept
	stalled          bool     // saw a blackhole: closed on Heal
}

// StartProxy listens on 127.0.0.1 (a free port) and forwards to target.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the forwarded address.
func (p *Proxy) Target() string { return p.target }

// Blackhole stalls all traffic until Heal.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackholed = true
	for c := range p.conns {
		c.stalled = true
	}
}

// Heal closes the connections that were stalled and forwards again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.blackholed = false
	var stale []*proxyConn
	for c := range p.conns {
		if c.stalled {
			stale = append(stale, c)
			delete(p.conns, c)
		}
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

// Down closes every connection and refuses new ones (the member behind it
// crashed) until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	conns := p.conns
	p.conns = map[*proxyConn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.close()
	}
}

// Up accepts and forwards connections again after Down.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Blackholed says whether traffic is stalled.
func (p *Proxy) Blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackholed
}

// Close stops listening, closes every connection and waits for the pumps.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[*proxyConn]struct{}{}
	p.mu.Unlock()
	err := p.ln.Close()
	for c := range conns {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (c *proxyConn) close() {
	c.client.Close()
	if c.upstream != nil {
		c.upstream.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		hole, down := p.blackholed, p.down
		p.mu.Unlock()
		if down {
			cc.Close()
			continue
		}
		c := &proxyConn{client: cc}
		if !hole {
			up, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				cc.Close()
				continue
			}
			c.upstream = up
		}
		p.mu.Lock()
		if p.closed || p.down {
			closed := p.closed
			p.mu.Unlock()
			c.close()
			if closed {
				return
			}
			continue
		}
		c.stalled = hole
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		if c.upstream == nil {
			go p.pump(c, cc, io.Discard)
			p.wg.Done()
			continue
		}
		go p.pump(c, cc, c.upstream)
		go p.pump(c, c.upstream, cc)
	}
}

// pump copies src to dst, dropping what it reads while blackholed. When
// either side ends, the whole connection is closed.
func (p *Proxy) pump(c *proxyConn, src io.Reader, dst io.Writer) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			drop := p.blackholed || c.stalled
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}
			c.close()
			return
		}
	}
}
