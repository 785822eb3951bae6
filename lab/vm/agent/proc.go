package agent

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/lab/procstat"
)

// outputGrace is how long exec keeps reading output after the shell
// exited, for background processes that still hold its stdout.
const outputGrace = 200 * time.Millisecond

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.buf)
	if len(p) > room {
		c.truncated = true
		c.buf = append(c.buf, p[:max(room, 0)]...)
	} else {
		c.buf = append(c.buf, p...)
	}
	return len(p), nil // keep draining the pipe
}

func (s *Server) exec(script string, timeout time.Duration) Response {
	if timeout <= 0 {
		return fail("agent: exec: timeout_ms must be positive: not run")
	}
	cmd := exec.Command(s.shell, "-c", script)
	cmd.Dir = s.dir
	out := &capped{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = outputGrace
	if err := cmd.Start(); err != nil {
		return fail("agent: exec: not started: %v", err)
	}
	pid := cmd.Process.Pid

	// The group is killed only while the shell is unreaped, so its PID
	// (the group's ID) cannot have been recycled.
	var mu sync.Mutex
	exited, killed := false, false
	timer := time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			killed = true
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	waitExitNoReap(pid)
	mu.Lock()
	exited = true
	mu.Unlock()
	timer.Stop()
	_ = cmd.Wait() // ErrWaitDelay or an exit status; both seen in ProcessState

	rc := exitCode(cmd.ProcessState)
	if killed {
		rc = -1
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	return Response{RC: &rc, Out: string(out.buf), Truncated: out.truncated}
}

// waitExitNoReap blocks until pid has exited, leaving it a zombie.
func waitExitNoReap(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (s *Server) spawn(argv []string, logPath string) Response {
	if len(argv) == 0 {
		return fail("agent: spawn: empty argv: nothing started")
	}
	if logPath == "" {
		logPath = os.DevNull
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fail("agent: spawn %s: log not opened, nothing started: %v", argv[0], err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fail("agent: spawn %s: not started: %v", argv[0], err)
	}
	pid := cmd.Process.Pid
	// Not reaped yet: /proc/pid/stat exists even if it already exited.
	st, err := procstat.Read(pid)
	go func() { _ = cmd.Wait() }()
	if err != nil {
		return fail("agent: spawn %s: started as pid %d, but its start time is unknown: %v", argv[0], pid, err)
	}
	return Response{PID: pid, StartTime: st.StartTime}
}

func signal(pid int, startTime uint64, sig int) Response {
	if pid <= 0 {
		return fail("agent: signal: pid %d: not sent", pid)
	}
	// Pin the process first, then check it is the one meant: a PID
	// recycled after the check leaves the pidfd pointing at the dead one.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fail("agent: signal %d to pid %d not sent: %v", sig, pid, err)
	}
	defer unix.Close(fd)
	st, err := procstat.Read(pid)
	if err != nil {
		return fail("agent: signal %d to pid %d not sent: %v", sig, pid, err)
	}
	if st.StartTime != startTime {
		return fail("agent: signal %d to pid %d not sent: it started at %d, not %d (another process)", sig, pid, st.StartTime, startTime)
	}
	if err := unix.PidfdSendSignal(fd, unix.Signal(sig), nil, 0); err != nil {
		return fail("agent: signal %d to pid %d not sent: %v", sig, pid, err)
	}
	return Response{}
}

func alive(pid int, startTime uint64) Response {
	yes := false
	if pid > 0 {
		st, err := procstat.Read(pid)
		yes = err == nil && st.StartTime == startTime && !st.Exited()
	}
	return Response{Alive: &yes}
}
