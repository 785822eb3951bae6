package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/vm/agent"
)

// Errors callers can test for with errors.Is.
var (
	ErrExited  = errors.New("vm: qemu exited")
	ErrTimeout = errors.New("vm: exec killed by its timeout")
)

// Default per-call bounds, applied when the caller's context has none
// (a shorter caller deadline always wins).
const (
	defaultStartTimeout = 30 * time.Second
	defaultReadyTimeout = 2 * time.Minute
	defaultCallTimeout  = 10 * time.Second
	defaultExecTimeout  = time.Minute
	// callGrace is how much longer than a guest-side timeout the host
	// waits for the reply that reports it.
	callGrace = 5 * time.Second
	pollEvery = 100 * time.Millisecond
)

const readyMarker = "@@VM-READY"

// VM is one running qemu process. Its methods are safe for concurrent use.
type VM struct {
	cfg     Config
	cmd     *exec.Cmd
	started time.Time
	agent   *lineConn
	qmp     *lineConn

	exited   chan struct{}
	exitedAt time.Time // set before exited is closed
	exitErr  error

	mu        sync.Mutex
	readyFrom int64 // console offset after which WaitReady looks for the marker
	bootTime  time.Duration

	stopOnce sync.Once
	stopErr  error
}

// Proc is a process spawned in the guest, named by PID and start time so
// that a recycled PID is never mistaken for it.
type Proc struct {
	PID       int
	StartTime uint64 // field 22 of /proc/PID/stat in the guest
}

// Start starts qemu for c and completes the QMP handshake. ctx bounds the
// start only (default 30 s), not the VM's life: that ends with Stop,
// PowerCut, or the guest powering off. qemu is killed if the calling
// process dies (PR_SET_PDEATHSIG). On error no qemu is left running.
func Start(ctx context.Context, c Config) (*VM, error) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("vm %s: not started: %w", c.Name, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, defaultStartTimeout)
	defer cancel()
	if err := prepareFiles(c); err != nil {
		return nil, fmt.Errorf("vm %s: not started: %w", c.Name, err)
	}
	logf, err := os.Create(filepath.Join(c.Dir, "qemu.log"))
	if err != nil {
		return nil, fmt.Errorf("vm %s: not started: %w", c.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command("qemu-system-x86_64", c.qemuArgs()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	v := &VM{cfg: c, cmd: cmd, exited: make(chan struct{})}
	v.started = time.Now()
	// Fork from a fresh goroutine, so from an unlocked OS thread: the
	// death signal follows the thread that forked (a caller locked to a
	// thread that later exits would kill qemu), and so does its netns.
	started := make(chan error, 1)
	go func() { started <- cmd.Start() }()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("vm %s: qemu not started: %w", c.Name, err)
	}
	go func() {
		v.exitErr = cmd.Wait()
		v.exitedAt = time.Now()
		close(v.exited)
	}()
	v.qmp = newLineConn(v.dialer(qmpDial(filepath.Join(c.Dir, "qmp.sock"))), qmpKey, maxQMPLine)
	v.agent = newLineConn(v.dialer(agentDial(filepath.Join(c.Dir, "ctl.sock"))), agentKey, agent.MaxReplyLine)

	// qemu creates its sockets during start-up: dial until they answer.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := v.qmp.connect(ctx)
		if err == nil {
			return v, nil
		}
		var why error
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
			why = context.Cause(ctx)
		case <-v.exited:
			why = fmt.Errorf("%w (%v)", ErrExited, v.exitErr)
		}
		_ = v.kill()
		return nil, fmt.Errorf("vm %s: no QMP, qemu gone: %w; last: %v\n%s", c.Name, why, err, v.logTail())
	}
}

// prepareFiles makes the run directory, removes the previous run's
// sockets and creates the disk if absent.
func prepareFiles(c Config) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"qmp.sock", "ctl.sock"} {
		if err := os.Remove(filepath.Join(c.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if c.Disk == "" {
		return nil
	}
	f, err := os.OpenFile(c.Disk, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(c.DiskMiB) << 20); err != nil {
		os.Remove(c.Disk)
		return fmt.Errorf("disk %s not sized: %w", c.Disk, err)
	}
	return nil
}

func unixDial(path string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// agentProbeEvery is how often agentDial repeats its probe.
const agentProbeEvery = 250 * time.Millisecond

// agentDial dials the agent's socket and returns the connection once the
// agent has answered on it. After the host side of the port dropped, the
// guest notices only when it reads (EOF), closes the port and reopens it
// 200 ms later; a request written meanwhile is lost, and its caller waits
// out its whole timeout. So a probe — op alive for pid 0, id 0, which
// agentKey never routes to a call — is written every agentProbeEvery until
// a reply line comes back (or ctx ends). The reply is read a byte at a
// time, so nothing after it is taken from the connection's reader; a late
// answer to an earlier probe is dropped there like any line without a
// caller.
func agentDial(path string) func(ctx context.Context) (net.Conn, error) {
	dial := unixDial(path)
	probe, _ := json.Marshal(agent.Request{Op: "alive"})
	probe = append(probe, '\n')
	return func(ctx context.Context) (net.Conn, error) {
		conn, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		for {
			if ctx.Err() != nil {
				conn.Close()
				return nil, fmt.Errorf("the agent did not answer a probe: %w", context.Cause(ctx))
			}
			dl := time.Now().Add(agentProbeEvery)
			if d, ok := ctx.Deadline(); ok && d.Before(dl) {
				dl = d
			}
			_ = conn.SetDeadline(dl)
			if _, err := conn.Write(probe); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				conn.Close()
				return nil, fmt.Errorf("probe not sent: %w", err)
			}
			var b [1]byte
			got := false
			for {
				n, err := conn.Read(b[:])
				if err != nil {
					break
				}
				if n == 1 && b[0] == '\n' {
					got = true
					break
				}
			}
			if got {
				_ = conn.SetDeadline(time.Time{})
				return conn, nil
			}
		}
	}
}

// dialer refuses to dial once qemu exited (its socket path may be reused).
func (v *VM) dialer(dial func(ctx context.Context) (net.Conn, error)) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		select {
		case <-v.exited:
			return nil, ErrExited
		default:
		}
		return dial(ctx)
	}
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// callCtx bounds a call by d (or the caller's earlier deadline) and ends
// it early, with cause ErrExited, when qemu exits.
func (v *VM) callCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	ctx, cancel := context.WithTimeout(ctx, d)
	select {
	case <-v.exited:
		cancelCause(ErrExited)
	default:
	}
	go func() {
		select {
		case <-v.exited:
			cancelCause(ErrExited)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); cancelCause(nil) }
}

func (v *VM) errf(err error, format string, args ...any) error {
	select {
	case <-v.exited:
		if !errors.Is(err, ErrExited) {
			err = fmt.Errorf("%w (%w)", err, ErrExited)
		}
	default:
	}
	return fmt.Errorf("vm %s: %s: %w", v.cfg.Name, fmt.Sprintf(format, args...), err)
}

// WaitReady waits until the console shows "@@VM-READY" (since Start or the
// last Reset) and the agent answers an exec of "true". It returns early if
// qemu exits. Errors carry the console's tail. Default bound 2 min.
func (v *VM) WaitReady(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, defaultReadyTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	v.mu.Lock()
	from, started := v.readyFrom, v.started
	v.mu.Unlock()
	seen := false
	var lastErr error
	for {
		if !seen {
			seen = bytes.Contains(v.consoleFrom(from), []byte(readyMarker))
		}
		if seen {
			_, rc, err := v.Exec(ctx, "true", 2*time.Second)
			if err == nil && rc == 0 {
				v.mu.Lock()
				v.bootTime = time.Since(started)
				v.mu.Unlock()
				return nil
			}
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-v.exited:
			return fmt.Errorf("vm %s: not ready: %w (%v)\n%s", v.cfg.Name, ErrExited, v.exitErr, v.consoleTail())
		case <-ctx.Done():
			what := "no " + readyMarker + " on the console"
			if seen {
				what = fmt.Sprintf("%s seen, agent not answering (%v)", readyMarker, lastErr)
			}
			return fmt.Errorf("vm %s: not ready after %v: %s: %w\n%s", v.cfg.Name, time.Since(started).Round(time.Millisecond), what, context.Cause(ctx), v.consoleTail())
		}
	}
}

// BootTime is how long the last boot took from qemu's start (or Reset) to
// the agent's first answer in WaitReady; zero before that.
func (v *VM) BootTime() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bootTime
}

// Exec runs script with /bin/sh -c in the guest (cwd /root, stdin
// /dev/null) and returns its combined output and exit code. The guest
// kills the script's process group after timeout (default 1 min, cut short
// to fit the caller's deadline); then rc is -1 and the error wraps
// ErrTimeout. Output over 1 MiB is cut and ends with a note saying so.
func (v *VM) Exec(ctx context.Context, script string, timeout time.Duration) (string, int, error) {
	if timeout <= 0 {
		timeout = defaultExecTimeout
	}
	timeout = guestTimeout(ctx, timeout)
	if timeout <= 0 {
		return "", -1, fmt.Errorf("vm %s: exec %s: not sent: %w", v.cfg.Name, brief(script), context.DeadlineExceeded)
	}
	ctx, cancel := v.callCtx(ctx, timeout+callGrace)
	defer cancel()
	r, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpExec, Script: script, TimeoutMS: max(timeout.Milliseconds(), 1)})
	if err != nil {
		return "", -1, v.errf(err, "exec %s", brief(script))
	}
	out := r.Out
	if r.Truncated {
		out += fmt.Sprintf("\n[output truncated at %d bytes]\n", agent.MaxOutput)
	}
	rc := -1
	if r.RC != nil {
		rc = *r.RC
	}
	if rc == -1 {
		return out, rc, fmt.Errorf("vm %s: exec %s: %w after %v", v.cfg.Name, brief(script), ErrTimeout, timeout)
	}
	return out, rc, nil
}

// guestTimeout is want, shortened when the caller's deadline comes first,
// so that the guest gives up early enough for its reply to arrive.
func guestTimeout(ctx context.Context, want time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return want
	}
	left := time.Until(dl)
	return min(want, left-min(left/5, time.Second))
}

// brief is a script's first line, shortened, for error messages.
func brief(script string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(script), "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// Spawn starts argv[0] (looked up in the guest's PATH) in the background
// in its own session, stdout and stderr appended to log in the guest.
func (v *VM) Spawn(ctx context.Context, argv []string, log string) (Proc, error) {
	ctx, cancel := v.callCtx(ctx, defaultCallTimeout)
	defer cancel()
	r, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpSpawn, Argv: argv, Log: log})
	if err != nil {
		return Proc{}, v.errf(err, "spawn %q", argv)
	}
	return Proc{PID: r.PID, StartTime: r.StartTime}, nil
}

// Signal sends sig to p if p's PID still has p's start time (the guest
// checks it through a pidfd, so a recycled PID never gets it).
func (v *VM) Signal(ctx context.Context, p Proc, sig syscall.Signal) error {
	ctx, cancel := v.callCtx(ctx, defaultCallTimeout)
	defer cancel()
	_, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpSignal, PID: p.PID, StartTime: p.StartTime, Sig: int(sig)})
	if err != nil {
		return v.errf(err, "signal %v to %d", sig, p.PID)
	}
	return nil
}

// Alive reports whether p still runs (not a zombie, same start time).
func (v *VM) Alive(ctx context.Context, p Proc) (bool, error) {
	ctx, cancel := v.callCtx(ctx, defaultCallTimeout)
	defer cancel()
	r, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpAlive, PID: p.PID, StartTime: p.StartTime})
	if err != nil {
		return false, v.errf(err, "alive %d", p.PID)
	}
	return r.Alive != nil && *r.Alive, nil
}

// ReadFile reads a file in the guest (at most 1 MiB) through the agent,
// without a shell: a cheap call (e.g. /proc/drbd many times a second).
// Bytes that are not UTF-8 arrive as U+FFFD.
func (v *VM) ReadFile(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := v.callCtx(ctx, defaultCallTimeout)
	defer cancel()
	r, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpRead, Path: path})
	if err != nil {
		return nil, v.errf(err, "read %s", path)
	}
	if r.Truncated {
		return []byte(r.Out), fmt.Errorf("vm %s: read %s: over %d bytes, cut", v.cfg.Name, path, agent.MaxOutput)
	}
	return []byte(r.Out), nil
}

// HTTP does one HTTP/1.1 request over the unix socket unixSocket in the
// guest, with a timeout of 5 s (or less, to fit the caller's deadline). Bodies
// travel as JSON strings: bytes that are not UTF-8 arrive as U+FFFD. A
// reply body over 1 MiB is cut (and an error returned with it).
func (v *VM) HTTP(ctx context.Context, unixSocket, method, path string, body []byte) (int, []byte, error) {
	timeout := guestTimeout(ctx, 5*time.Second)
	if timeout <= 0 {
		return 0, nil, fmt.Errorf("vm %s: http %s %s: not sent: %w", v.cfg.Name, method, path, context.DeadlineExceeded)
	}
	ctx, cancel := v.callCtx(ctx, timeout+callGrace)
	defer cancel()
	r, err := agentCall(ctx, v.agent, agent.Request{Op: agent.OpHTTP, Unix: unixSocket, Method: method, Path: path,
		Body: string(body), TimeoutMS: max(timeout.Milliseconds(), 1)})
	if err != nil {
		return 0, nil, v.errf(err, "http %s %s", method, path)
	}
	if r.Truncated {
		return r.Status, []byte(r.Body), fmt.Errorf("vm %s: http %s %s: body cut at %d bytes", v.cfg.Name, method, path, agent.MaxOutput)
	}
	return r.Status, []byte(r.Body), nil
}

// QMP runs one QMP command (args: nil or a JSON-marshalable object) and
// returns its "return" value; asynchronous events are skipped.
func (v *VM) QMP(ctx context.Context, command string, args any) (json.RawMessage, error) {
	ctx, cancel := v.callCtx(ctx, defaultCallTimeout)
	defer cancel()
	r, err := qmpCall(ctx, v.qmp, command, args)
	if err != nil {
		return nil, v.errf(err, "qmp %s", command)
	}
	return r, nil
}

// SetLink sets the link of NIC nicID up or down (QMP set_link on the
// netdev, which takes the guest's NIC with it: carrier off, nothing sent
// or received).
func (v *VM) SetLink(ctx context.Context, nicID string, up bool) error {
	_, err := v.QMP(ctx, "set_link", map[string]any{"name": nicID, "up": up})
	return err
}

// Reset resets the guest (QMP system_reset): it reboots without shutting
// down, unless NoReboot, when qemu exits. A later WaitReady waits for the
// new boot. Requests queued for the old agent may run after the reboot.
func (v *VM) Reset(ctx context.Context) error {
	v.mu.Lock()
	v.readyFrom = v.consoleSize()
	v.started = time.Now()
	v.bootTime = 0
	v.mu.Unlock()
	_, err := v.QMP(ctx, "system_reset", nil)
	return err
}

// PowerCut ends qemu at once, the guest unaware: QMP quit, or SIGKILL of
// qemu's PID if QMP fails or qemu is still there 5 s later. It returns
// when qemu has exited.
func (v *VM) PowerCut() error {
	ctx, cancel := v.callCtx(context.Background(), 2*time.Second)
	_, qerr := qmpCall(ctx, v.qmp, "quit", nil)
	cancel()
	if qerr == nil && v.waitExit(5*time.Second) {
		return nil
	}
	return v.kill()
}

// kill sends SIGKILL to the qemu process this VM started (through its
// pidfd: never another process) and waits for it to be reaped.
func (v *VM) kill() error {
	if err := v.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("vm %s: qemu (pid %d) not killed: %w", v.cfg.Name, v.cmd.Process.Pid, err)
	}
	<-v.exited
	v.agent.close()
	v.qmp.close()
	return nil
}

func (v *VM) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-v.exited:
		v.agent.close()
		v.qmp.close()
		return true
	case <-t.C:
		return false
	}
}

// Exited is closed when the qemu process has exited (and been reaped).
func (v *VM) Exited() <-chan struct{} { return v.exited }

// ExitedAt is when qemu exited (zero while it runs).
func (v *VM) ExitedAt() time.Time {
	select {
	case <-v.exited:
		return v.exitedAt
	default:
		return time.Time{}
	}
}

// PID is qemu's process ID.
func (v *VM) PID() int { return v.cmd.Process.Pid }

// Console returns the serial console's output so far (all boots).
func (v *VM) Console() string {
	return string(v.consoleFrom(0))
}

// Dmesg returns the guest's kernel log, or a line saying why not.
func (v *VM) Dmesg(ctx context.Context) string {
	out, rc, err := v.Exec(ctx, "dmesg", 10*time.Second)
	if err != nil || rc != 0 {
		return fmt.Sprintf("(dmesg of %s not read: rc %d, %v)\n%s", v.cfg.Name, rc, err, out)
	}
	return out
}

// Stop powers the VM off: "sync; poweroff -f" through the agent, else QMP
// quit, else SIGKILL of qemu's PID. It returns when qemu has exited, with
// the same result on every call.
func (v *VM) Stop() error {
	v.stopOnce.Do(func() { v.stopErr = v.stop() })
	return v.stopErr
}

func (v *VM) stop() error {
	select {
	case <-v.exited:
		v.agent.close()
		v.qmp.close()
		return nil
	default:
	}
	// The guest powers off before it can answer: fire and wait for exit.
	go func() {
		ctx, cancel := v.callCtx(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = agentCall(ctx, v.agent, agent.Request{Op: agent.OpExec, Script: "sync; poweroff -f", TimeoutMS: 10000})
	}()
	if v.waitExit(10 * time.Second) {
		return nil
	}
	return v.PowerCut()
}

func (v *VM) consoleFrom(off int64) []byte {
	f, err := os.Open(filepath.Join(v.cfg.Dir, "console.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		return nil
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(f)
	return b.Bytes()
}

func (v *VM) consoleSize() int64 {
	fi, err := os.Stat(filepath.Join(v.cfg.Dir, "console.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// consoleTail is the console's last lines, for error messages.
func (v *VM) consoleTail() string {
	return "console.log (tail):\n" + tail(v.consoleFrom(0), 30) + v.logTail()
}

// logTail is qemu's own output (bad options, missing files), if any.
func (v *VM) logTail() string {
	b, err := os.ReadFile(filepath.Join(v.cfg.Dir, "qemu.log"))
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	return "qemu.log (tail):\n" + tail(b, 10)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
