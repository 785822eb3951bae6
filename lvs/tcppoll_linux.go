package lvs

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPoller runs TCP_CHECKs as keepalived does: non-blocking connects
// watched by one epoll in one goroutine, five system calls a check
// (socket, connect, epoll_ctl, getsockopt, close) and no goroutine,
// netpoller registration or thread hand-off per check. A connect that
// completes is a success, one that fails (refused, unreachable) or does
// not complete within the check's connect_timeout a failure.
type tcpPoller struct {
	epfd, wake int // the epoll and the eventfd that interrupts its wait

	mu      sync.Mutex
	pending []tcpJob

	inflight map[int]*tcpJob // by socket
	expiry   timeHeap[expiry]
	seq      uint64
	events   []unix.EpollEvent
}

type tcpJob struct {
	id       int
	target   netip.AddrPort
	deadline time.Time
	timeout  time.Duration
	seq      uint64
}

func newTCPPoller() (*tcpPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("lvs: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("lvs: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("lvs: epoll: %w", err)
	}
	return &tcpPoller{epfd: epfd, wake: wake, inflight: map[int]*tcpJob{}, events: make([]unix.EpollEvent, 256)}, nil
}

// submit queues a check; it never blocks on the poller.
func (p *tcpPoller) submit(id int, target netip.AddrPort, timeout time.Duration) {
	p.mu.Lock()
	p.pending = append(p.pending, tcpJob{id: id, target: target, timeout: timeout})
	first := len(p.pending) == 1
	p.mu.Unlock()
	if first {
		var one = [8]byte{1}
		unix.Write(p.wake, one[:])
	}
}

// run connects, waits and reports each outcome with done, calling flush
// after each round of outcomes, until ctx ends; then it closes every
// socket and its epoll.
func (p *tcpPoller) run(ctx context.Context, done func(id int, o Outcome, at time.Time), flush func()) {
	stop := context.AfterFunc(ctx, func() { unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) })
	defer stop()
	defer p.close()
	var buf [8]byte
	for ctx.Err() == nil {
		p.mu.Lock()
		jobs := p.pending
		p.pending = nil
		p.mu.Unlock()
		now := time.Now()
		for i := range jobs {
			if o, finished := p.start(&jobs[i], now); finished {
				done(jobs[i].id, o, now)
			}
		}
		flush()
		wait := -1
		if len(p.expiry) > 0 {
			wait = max(int(time.Until(p.expiry[0].at)/time.Millisecond)+1, 0)
		}
		n, err := unix.EpollWait(p.epfd, p.events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		now = time.Now()
		for _, ev := range p.events[:max(n, 0)] {
			fd := int(ev.Fd)
			if fd == p.wake {
				unix.Read(p.wake, buf[:])
				continue
			}
			j := p.inflight[fd]
			if j == nil {
				continue
			}
			o := Outcome{OK: true, Dynamic: -1}
			if errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
				if err == nil {
					err = unix.Errno(errno)
				}
				o = Outcome{Dynamic: -1, Err: fmt.Sprintf("connect %s: %v", j.target, err)}
			}
			p.finish(fd)
			done(j.id, o, now)
		}
		for len(p.expiry) > 0 && !p.expiry[0].at.After(now) {
			e := heap.Pop(&p.expiry).(timed[expiry]).v
			if j := p.inflight[e.fd]; j != nil && j.seq == e.seq {
				p.finish(e.fd)
				done(j.id, Outcome{Dynamic: -1, Err: fmt.Sprintf("connect %s: i/o timeout (connect_timeout %v)", j.target, j.timeout)}, now)
			}
		}
		flush()
	}
}

// start opens and connects a socket for j; finished reports an outcome
// known at once (a local error, or an immediate connect).
func (p *tcpPoller) start(j *tcpJob, now time.Time) (o Outcome, finished bool) {
	fail := func(what string, err error) (Outcome, bool) {
		return Outcome{Dynamic: -1, Err: fmt.Sprintf("%s %s: %v", what, j.target, err)}, true
	}
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(j.target.Port()), Addr: j.target.Addr().Unmap().As4()})
	if a := j.target.Addr(); a.Is6() && !a.Is4In6() {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(j.target.Port()), Addr: a.As16(), ZoneId: zoneID(a.Zone())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	switch err := unix.Connect(fd, sa); {
	case err == nil:
		unix.Close(fd)
		return Outcome{OK: true, Dynamic: -1}, true
	case !errors.Is(err, unix.EINPROGRESS):
		unix.Close(fd)
		return fail("connect", err)
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return fail("epoll", err)
	}
	p.seq++
	j.seq, j.deadline = p.seq, now.Add(j.timeout)
	p.inflight[fd] = j
	heap.Push(&p.expiry, timed[expiry]{at: j.deadline, v: expiry{fd: fd, seq: j.seq}})
	return Outcome{}, false
}

// finish closes a socket in flight (closing takes it out of the epoll).
func (p *tcpPoller) finish(fd int) {
	delete(p.inflight, fd)
	unix.Close(fd)
}

func (p *tcpPoller) close() {
	for fd := range p.inflight {
		p.finish(fd)
	}
	unix.Close(p.epfd)
	unix.Close(p.wake)
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// expiry is a socket in flight: skipped when popped if it finished
// already (seq no longer matches).
type expiry struct {
	fd  int
	seq uint64
}
