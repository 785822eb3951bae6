package lvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpPoller runs and schedules a Director's TCP_CHECKs as keepalived
// does: non-blocking connects watched by one epoll in one goroutine,
// which also keeps the checks' schedule (the epoll wait's timeout is the
// next check due or the next connect_timeout). A check costs four system
// calls (socket, connect, epoll_ctl, close; the connect's error is read
// with getsockopt only when epoll reports one) and no goroutine, channel,
// timer, thread hand-off or allocation. The non-blocking calls are made
// without the runtime's blocking-syscall bookkeeping. A connect that
// completes is a success, one that fails (refused, unreachable) or does
// not complete within the check's connect_timeout a failure.
type tcpPoller struct {
	epfd, wake int // the epoll and the eventfd that interrupts its wait
	// ep is epfd in the runtime's netpoller: the goroutine waits for the
	// epoll parked, not in a blocking system call (the runtime's monitor
	// would take its P back each time and poll at 20 µs for a while: more
	// sleeps than checks); its read deadline is the next due time.
	ep *os.File
	rc syscall.RawConn

	checks []tcpCheck
	due    timeHeap[int]    // check index → when it starts
	expiry timeHeap[uint64] // check index<<32 | flight → connect_timeout
	events []unix.EpollEvent
	ev     unix.EpollEvent // epoll_ctl's argument, reused
}

// tcpCheck is one TCP_CHECK: its target as a raw socket address, and
// the socket of the connect in flight (-1: none).
type tcpCheck struct {
	id      int // the caller's
	target  netip.AddrPort
	timeout time.Duration
	family  int
	sa      [unix.SizeofSockaddrInet6]byte
	salen   uintptr
	fd      int
	flight  uint32
}

// newTCPPoller makes a poller without checks (add them before run).
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
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("lvs: epoll: %w", err)
	}
	p := &tcpPoller{epfd: epfd, wake: wake, events: make([]unix.EpollEvent, 256)}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("lvs: epoll: %w", err)
	}
	p.ep = os.NewFile(uintptr(epfd), "lvs-tcp-checks")
	if p.rc, err = p.ep.SyscallConn(); err != nil {
		p.ep.Close()
		unix.Close(wake)
		return nil, fmt.Errorf("lvs: epoll: %w", err)
	}
	return p, nil
}

// add schedules a check (before run): id is the caller's, first when it
// first runs.
func (p *tcpPoller) add(id int, target netip.AddrPort, timeout time.Duration, first time.Time) {
	c := tcpCheck{id: id, target: target, timeout: timeout, fd: -1}
	a := target.Addr()
	if a.Is4() || a.Is4In6() {
		c.family, c.salen = unix.AF_INET, unix.SizeofSockaddrInet4
		binary.NativeEndian.PutUint16(c.sa[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(c.sa[2:], target.Port())
		b := a.Unmap().As4()
		copy(c.sa[4:], b[:])
	} else {
		c.family, c.salen = unix.AF_INET6, unix.SizeofSockaddrInet6
		binary.NativeEndian.PutUint16(c.sa[0:], unix.AF_INET6)
		binary.BigEndian.PutUint16(c.sa[2:], target.Port())
		b := a.As16()
		copy(c.sa[8:], b[:])
		binary.NativeEndian.PutUint32(c.sa[24:], zoneID(a.Zone()))
	}
	p.checks = append(p.checks, c)
	p.due.push(timed[int]{at: first, v: len(p.checks) - 1})
}

// run runs the checks until ctx ends: each outcome goes to done, which
// returns the delay to that check's next run. Then it closes every socket
// and its epoll.
func (p *tcpPoller) run(ctx context.Context, done func(id int, o Outcome, at time.Time) time.Duration) {
	stop := context.AfterFunc(ctx, func() { unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) })
	defer stop()
	defer p.close()
	for ctx.Err() == nil {
		now := time.Now()
		// Checks due within Coalesce start together: one wake-up for
		// many.
		for soon := now.Add(Coalesce); len(p.due) > 0 && !p.due[0].at.After(soon); {
			i := p.due.pop().v
			if o, finished := p.start(i, now); finished {
				p.due.push(timed[int]{at: now.Add(done(p.checks[i].id, o, now)), v: i})
			}
		}
		var next time.Time
		if len(p.due) > 0 {
			next = p.due[0].at
		}
		if len(p.expiry) > 0 && (next.IsZero() || p.expiry[0].at.Before(next)) {
			next = p.expiry[0].at
		}
		n, err := p.wait(next)
		if err != nil {
			return
		}
		now = time.Now()
		p.judge(n, now, done)
		// A full batch may leave completed connects in the epoll: read
		// them all before any connect_timeout is judged (a goroutine
		// that ran late must not count them as timeouts).
		for n == len(p.events) {
			if n, err = p.wait(now); err != nil {
				return
			}
			p.judge(n, now, done)
		}
		for len(p.expiry) > 0 && !p.expiry[0].at.After(now) {
			e := p.expiry.pop().v
			i := int(e >> 32)
			c := &p.checks[i]
			if c.fd < 0 || c.flight != uint32(e) {
				continue // finished before its timeout
			}
			p.finish(c)
			o := Outcome{Dynamic: -1, Err: fmt.Sprintf("connect %s: i/o timeout (connect_timeout %v)", c.target, c.timeout)}
			p.due.push(timed[int]{at: now.Add(done(c.id, o, now)), v: i})
		}
	}
}

// judge reports the outcomes of the n events in p.events.
func (p *tcpPoller) judge(n int, now time.Time, done func(id int, o Outcome, at time.Time) time.Duration) {
	for _, ev := range p.events[:max(n, 0)] {
		if ev.Fd < 0 {
			var buf [8]byte
			unix.Read(p.wake, buf[:])
			continue
		}
		i := int(ev.Pad)
		c := &p.checks[i]
		if c.fd != int(ev.Fd) {
			continue
		}
		o := Outcome{OK: true, Dynamic: -1}
		if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil {
				err = unix.Errno(errno)
			}
			o = Outcome{Dynamic: -1, Err: fmt.Sprintf("connect %s: %v", c.target, err)}
		}
		p.finish(c)
		p.due.push(timed[int]{at: now.Add(done(c.id, o, now)), v: i})
	}
}

// wait returns the epoll's events (in p.events) as soon as there are
// any, or none at until (zero: no limit). It parks the goroutine in the
// runtime's netpoller meanwhile.
func (p *tcpPoller) wait(until time.Time) (int, error) {
	if err := p.ep.SetReadDeadline(until); err != nil {
		return 0, err
	}
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, fd, uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
		switch e {
		case 0:
			n = int(r)
			return n > 0
		case unix.EINTR:
			return false
		}
		werr = fmt.Errorf("lvs: epoll_wait: %w", e)
		return true
	}
	err := p.rc.Read(poll)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// What arrived by now counts before any connect_timeout is
		// judged: the goroutine may have run late.
		poll(uintptr(p.epfd))
		err = nil
	}
	if err == nil {
		err = werr
	}
	return n, err
}

// start opens a socket for check i and connects it; finished reports an
// outcome known at once (a local error, or an immediate connect).
func (p *tcpPoller) start(i int, now time.Time) (o Outcome, finished bool) {
	c := &p.checks[i]
	fail := func(what string, err error) (Outcome, bool) {
		return Outcome{Dynamic: -1, Err: fmt.Sprintf("%s %s: %v", what, c.target, err)}, true
	}
	fd, err := unix.Socket(c.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	switch _, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&c.sa[0])), c.salen); e {
	case 0:
		closeFD(fd)
		return Outcome{OK: true, Dynamic: -1}, true
	case unix.EINPROGRESS:
	default:
		closeFD(fd)
		return fail("connect", e)
	}
	p.ev = unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd), Pad: int32(i)}
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(p.epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&p.ev)), 0, 0); e != 0 {
		closeFD(fd)
		return fail("epoll", e)
	}
	c.fd = fd
	c.flight++
	p.expiry.push(timed[uint64]{at: now.Add(c.timeout), v: uint64(i)<<32 | uint64(c.flight)})
	return Outcome{}, false
}

// finish closes the socket in flight of c (closing takes it out of the
// epoll).
func (p *tcpPoller) finish(c *tcpCheck) {
	closeFD(c.fd)
	c.fd = -1
}

// closeFD closes a socket that does not block on close (no SO_LINGER).
func closeFD(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

func (p *tcpPoller) close() {
	for i := range p.checks {
		if p.checks[i].fd >= 0 {
			p.finish(&p.checks[i])
		}
	}
	p.ep.Close()
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
