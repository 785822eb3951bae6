package netlab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Responder answers every TCP connection on its port with its node name
// (Answer: an HTTP/1.1 response, so that curl works too), then closes it.
// Run it in each node's namespace; it binds to the wildcard address, so it
// answers on the VIP whenever the node has the VIP configured.
type Responder struct {
	host *Host
	name string
	port uint16

	ready chan struct{}
}

// NewResponder prepares a responder in host's namespace answering name
// on port.
func NewResponder(host *Host, port uint16) *Responder {
	return &Responder{host: host, name: host.Name, port: port, ready: make(chan struct{})}
}

// Ready is closed once the responder listens.
func (r *Responder) Ready() <-chan struct{} { return r.ready }

// Run listens and serves until ctx ends.
func (r *Responder) Run(ctx context.Context) error {
	var ln net.Listener
	err := r.host.Do(func() error {
		// The wildcard (dual-stack) address needs no IP_FREEBIND: the
		// socket accepts for the VIP whenever it is configured.
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", r.port))
		return err
	})
	if err != nil {
		return fmt.Errorf("netlab: responder %s: %w", r.name, err)
	}
	close(r.ready)
	defer ln.Close()
	if err := Serve(ctx, ln, r.name); err != nil {
		return fmt.Errorf("netlab: responder %s: %w", r.name, err)
	}
	return nil
}

// Answer is what a responder sends on every connection: an HTTP/1.1
// response whose body is the node's name and a newline. The prober reads
// the name from it (ParseAnswer); `curl VIP:PORT` prints it.
func Answer(name string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		len(name)+1, name)
}

// probeRequest is what the prober sends before it reads: the smallest
// HTTP/1.1 request, so that the responder answers at once.
const probeRequest = "GET / HTTP/1.1\r\nHost: leasehold-lab\r\n\r\n"

// requestWait is how long a responder waits for the first bytes of a
// request before it answers a silent client (nc) anyway.
const requestWait = 100 * time.Millisecond

// ParseAnswer returns the node name in the first bytes of an answer, and
// whether they hold all of it. A bare "name\n" (an older responder) is
// accepted too.
func ParseAnswer(b []byte) (string, bool) {
	s := string(b)
	if strings.HasPrefix(s, "HTTP/") {
		_, body, ok := strings.Cut(s, "\r\n\r\n")
		if !ok {
			return "", false
		}
		s = body
	}
	name, _, ok := strings.Cut(s, "\n")
	return name, ok
}

// Serve answers every connection ln accepts with Answer(name) until ctx
// ends or ln fails. The answer follows the client's request header (an
// HTTP client that sees a response before it has sent its request drops
// the connection as unsolicited), or requestWait of silence; the rest of
// what the client sends is read and dropped after the answer, so that
// closing does not reset a connection the client has not read yet.
func Serve(ctx context.Context, ln net.Listener, name string) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	answer := Answer(name)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		go respond(c, answer)
	}
}

// respond answers one connection after its request header (see Serve).
// The whole exchange is bounded by a second.
func respond(c net.Conn, answer []byte) {
	defer c.Close()
	deadline := time.Now().Add(time.Second)
	c.SetDeadline(deadline)
	c.SetReadDeadline(time.Now().Add(requestWait))
	var buf [1024]byte
	n := 0
	for n < len(buf) && !strings.Contains(string(buf[:n]), "\r\n\r\n") {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
		if n > 0 {
			c.SetReadDeadline(deadline)
		}
	}
	c.SetDeadline(deadline)
	c.Write(answer)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		io.Copy(io.Discard, c)
	}
}

// TCPSample is one probe of the TCP prober.
type TCPSample struct {
	At Stamp `json:"at"`
	// Node is the name the responder sent; empty on failure.
	Node string `json:"node,omitempty"`
	// Err describes a failure ("timeout", "refused", ...).
	Err   string `json:"err,omitempty"`
	RTTUS int64  `json:"rtt_us"`
}

// OK reports whether the probe got an answer.
func (s TCPSample) OK() bool { return s.Err == "" }

// TCPProber connects from the client host to VIP:port every Interval,
// reads the answering node's name and records it. Probes start on a fixed
// grid, whatever became of the previous one: while the VIP is silent a
// failing probe waits out its Timeout, and the next ones are already under
// way on other threads, so an outage is resolved to Interval, not Timeout.
type TCPProber struct {
	// Interval between probe starts (default 20 ms).
	Interval time.Duration
	// Timeout for connect plus read (default 100 ms).
	Timeout time.Duration

	tb     Timebase
	client *Host
	target netip.AddrPort

	mu      sync.Mutex
	samples []TCPSample
	end     Stamp
	ready   chan struct{}
}

// NewTCPProber probes target from the client host's namespace.
func NewTCPProber(tb Timebase, client *Host, target netip.AddrPort) *TCPProber {
	return &TCPProber{
		Interval: 20 * time.Millisecond,
		Timeout:  100 * time.Millisecond,
		tb:       tb,
		client:   client,
		target:   target,
		ready:    make(chan struct{}),
	}
}

// Ready is closed when probing starts.
func (p *TCPProber) Ready() <-chan struct{} { return p.ready }

// Run probes until ctx ends. Its probes run on 1 + Timeout/Interval
// threads inside the client's namespace (so every connection is made from
// there), thread i taking grid slots i, i+n, i+2n, ...
func (p *TCPProber) Run(ctx context.Context) error {
	interval, timeout := p.Interval, p.Timeout
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	defer func() {
		p.mu.Lock()
		p.end = p.tb.Now()
		p.mu.Unlock()
	}()
	n := 1 + int((timeout+interval-1)/interval)
	start := time.Now()
	var ready sync.Once
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- p.client.Do(func() error {
				ready.Do(func() { close(p.ready) })
				p.worker(ctx, start, i, n, interval, timeout)
				return nil
			})
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// worker probes at start + (i + k·n)·interval for k = 0, 1, ...; a slot it
// is already late for (its last probe ran long) is skipped.
func (p *TCPProber) worker(ctx context.Context, start time.Time, i, n int, interval, timeout time.Duration) {
	d := net.Dialer{Timeout: timeout}
	buf := make([]byte, 256)
	step := time.Duration(n) * interval
	next := start.Add(time.Duration(i) * interval)
	for ctx.Err() == nil {
		if late := time.Since(next); late > interval {
			next = next.Add((late/step + 1) * step)
		}
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		next = next.Add(step)
		begin := time.Now()
		s := TCPSample{At: p.tb.Stamp(begin)}
		s.Node, s.Err = probeOnce(ctx, &d, p.target, begin.Add(timeout), buf)
		s.RTTUS = time.Since(begin).Microseconds()
		if ctx.Err() != nil {
			return // a probe cut short by the end of Run is no outage
		}
		p.mu.Lock()
		p.samples = append(p.samples, s)
		p.mu.Unlock()
	}
}

func probeOnce(ctx context.Context, d *net.Dialer, target netip.AddrPort, deadline time.Time, buf []byte) (node, errText string) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", target.String())
	if err != nil {
		return "", errKind(err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, probeRequest); err != nil {
		return "", "write: " + errKind(err)
	}
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if name, ok := ParseAnswer(buf[:n]); ok {
			return name, ""
		}
		if err != nil {
			return "", "read: " + errKind(err)
		}
	}
	return "", "read: no answer in " + fmt.Sprint(len(buf)) + " bytes"
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

// Samples returns every probe recorded so far, in order of their start.
func (p *TCPProber) Samples() []TCPSample {
	p.mu.Lock()
	out := slices.Clone(p.samples)
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b TCPSample) int { return cmp.Compare(a.At.MonoUS, b.At.MonoUS) })
	return out
}

func (p *TCPProber) endStamp() Stamp {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end.IsZero() {
		return p.tb.Now()
	}
	return p.end
}

// Answerers returns the timeline of who answered (AnswererIntervals of
// the samples so far).
func (p *TCPProber) Answerers() []Interval {
	return AnswererIntervals(p.Samples(), p.endStamp())
}

// Outages returns the spans from the start of the first failed probe to
// the start of the next successful one (OutageIntervals of the samples so
// far).
func (p *TCPProber) Outages() []Interval {
	return OutageIntervals(p.Samples(), p.endStamp())
}

// AnswererIntervals returns the timeline of who answered the probes in
// samples (in any order): consecutive probes with the same outcome merged
// into one interval, Who = [node], or [] for failed probes. Each interval
// ends where the next begins; the last one is Open and ends at end, the
// end of the observation.
func AnswererIntervals(samples []TCPSample, end Stamp) []Interval {
	samples = slices.Clone(samples)
	slices.SortStableFunc(samples, func(a, b TCPSample) int { return cmp.Compare(a.At.MonoUS, b.At.MonoUS) })
	var out []Interval
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && samples[j].Node == samples[i].Node && samples[j].OK() == samples[i].OK() {
			j++
		}
		to, open := end, true
		if j < len(samples) {
			to, open = samples[j].At, false
		}
		var who []string
		if samples[i].OK() {
			who = []string{samples[i].Node}
		}
		out = append(out, newInterval(samples[i].At, to, open, who))
		i = j
	}
	return out
}

// OutageIntervals returns the intervals of AnswererIntervals in which no
// probe got an answer: from the start of the first failed probe to the
// start of the next successful one (Open if none succeeded after).
func OutageIntervals(samples []TCPSample, end Stamp) []Interval {
	var out []Interval
	for _, iv := range AnswererIntervals(samples, end) {
		if len(iv.Who) == 0 {
			out = append(out, iv)
		}
	}
	return out
}
