package keepalivedtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/procstat"
)

// Binary is the keepalived executable.
var Binary = "/usr/sbin/keepalived"

// ErrNotRunning is returned when keepalived exited (or never started).
var ErrNotRunning = errors.New("keepalivedtest: keepalived is not running")

// Options tune Run.
type Options struct {
	// Dir holds the configuration, pid files and log (default: a new
	// temporary directory, removed by Stop and Kill9 unless KeepDir).
	Dir     string
	KeepDir bool
	// ExtraArgs are appended to keepalived's command line.
	ExtraArgs []string
}

// Keepalived is one keepalived (parent and VRRP child) in a host namespace.
type Keepalived struct {
	host    *netlab.Host
	dir     string
	ownDir  bool
	conf    string
	proc    *netlab.Proc
	logFile *os.File
	log     *lockedBuffer

	mu      sync.Mutex
	stopped bool
}

// Run writes conf into the directory and starts keepalived in host's
// namespace:
//
//	keepalived --dont-fork --log-console --log-detail --no-syslog --vrrp
//	  -f DIR/keepalived.conf -p DIR/keepalived.pid -r DIR/vrrp.pid
//	  -c DIR/checkers.pid -b DIR/bfd.pid
//
// It returns once the VRRP child has started (its pid file exists and
// names a live process) or fails when keepalived exits first or ctx ends.
func Run(ctx context.Context, host *netlab.Host, conf Config, opts ...Options) (*Keepalived, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	text, err := conf.Render(host.Name)
	if err != nil {
		return nil, err
	}
	k := &Keepalived{host: host, dir: o.Dir, log: &lockedBuffer{}}
	if k.dir == "" {
		k.dir, err = os.MkdirTemp("", "keepalivedtest-"+host.NS+"-")
		if err != nil {
			return nil, fmt.Errorf("keepalivedtest: %w", err)
		}
		k.ownDir = !o.KeepDir
	}
	// enable_script_security wants every path component to be root-owned
	// and not writable by others.
	if err := os.Chmod(k.dir, 0o755); err != nil {
		return nil, fmt.Errorf("keepalivedtest: %w", err)
	}
	k.conf = filepath.Join(k.dir, "keepalived.conf")
	if err := os.WriteFile(k.conf, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("keepalivedtest: write config: %w", err)
	}
	k.logFile, err = os.Create(filepath.Join(k.dir, "keepalived.log"))
	if err != nil {
		return nil, fmt.Errorf("keepalivedtest: %w", err)
	}
	for _, f := range []string{"keepalived.pid", "vrrp.pid", "checkers.pid", "bfd.pid"} {
		os.Remove(filepath.Join(k.dir, f))
	}
	args := []string{
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
		"-f", k.conf,
		"-p", filepath.Join(k.dir, "keepalived.pid"),
		"-r", filepath.Join(k.dir, "vrrp.pid"),
		"-c", filepath.Join(k.dir, "checkers.pid"),
		"-b", filepath.Join(k.dir, "bfd.pid"),
	}
	args = append(args, o.ExtraArgs...)
	// Not CommandContext(ctx): ctx bounds the start only.
	cmd := host.Command(context.Background(), Binary, args...)
	w := io.MultiWriter(k.logFile, k.log)
	cmd.Stdout, cmd.Stderr = w, w
	k.proc, err = host.StartCmd(cmd)
	if err != nil {
		k.logFile.Close()
		return nil, err
	}
	for {
		if pid := k.VRRPPID(); pid > 0 {
			return k, nil
		}
		select {
		case <-k.proc.Done():
			k.logFile.Close()
			return nil, fmt.Errorf("%w: exited during start: %v\n%s", ErrNotRunning, k.proc.Wait(context.Background()), k.Log())
		case <-ctx.Done():
			k.Kill9()
			return nil, fmt.Errorf("keepalivedtest: start: %w\n%s", ctx.Err(), k.Log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// PID returns the parent process's PID.
func (k *Keepalived) PID() int { return k.proc.PID }

// VRRPPID returns the VRRP child's PID from its pid file, or 0 if it is
// not (or no longer) running.
func (k *Keepalived) VRRPPID() int {
	b, err := os.ReadFile(filepath.Join(k.dir, "vrrp.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	// The child must be ours: its parent is the keepalived we started.
	if ppid(pid) != k.proc.PID {
		return 0
	}
	return pid
}

// ppid returns the parent PID of pid from /proc, or 0 (gone or a zombie).
func ppid(pid int) int {
	st, err := procstat.Read(pid)
	if err != nil || st.Exited() {
		return 0
	}
	return st.PPID
}

// Dir returns the directory holding the config, pid files and log.
func (k *Keepalived) Dir() string { return k.dir }

// ConfigPath returns the path of the configuration file.
func (k *Keepalived) ConfigPath() string { return k.conf }

// Log returns everything keepalived has logged so far.
func (k *Keepalived) Log() string { return k.log.String() }

// Done is closed when the parent process has exited.
func (k *Keepalived) Done() <-chan struct{} { return k.proc.Done() }

// Freeze stops both processes (SIGSTOP), child first.
func (k *Keepalived) Freeze() error {
	var errs []error
	if c := k.VRRPPID(); c > 0 {
		errs = append(errs, k.host.Freeze(c))
	}
	return errors.Join(append(errs, k.host.Freeze(k.proc.PID))...)
}

// Thaw continues both processes (SIGCONT), parent first.
func (k *Keepalived) Thaw() error {
	errs := []error{k.host.Thaw(k.proc.PID)}
	if c := k.VRRPPID(); c > 0 {
		errs = append(errs, k.host.Thaw(c))
	}
	return errors.Join(errs...)
}

// Stop sends SIGTERM to the parent (which stops the VRRP child: priority-0
// advert, VIPs removed) and waits up to ctx (then SIGKILLs both).
func (k *Keepalived) Stop(ctx context.Context) error {
	if err := k.proc.Signal(syscall.SIGTERM); err != nil {
		k.finish()
		return fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	err := k.proc.Wait(ctx)
	if ctx.Err() != nil {
		k.Kill9()
		return fmt.Errorf("keepalivedtest: stop: %w", ctx.Err())
	}
	k.finish()
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	return err
}

// Kill9 reproduces `kill -9` of keepalived (parent and VRRP child, as
// pkill -9 does) without giving either a chance to react: it stops the
// child and the parent (SIGSTOP), then SIGKILLs the child and the parent.
// The VIPs stay configured in the namespace, as with a real crash. (A
// SIGKILL of the parent alone makes the child shut down gracefully; of the
// child alone makes the parent respawn it: see the package doc.)
func (k *Keepalived) Kill9() error {
	child := k.VRRPPID()
	select {
	case <-k.proc.Done():
		k.finish()
		return ErrNotRunning
	default:
	}
	var errs []error
	if child > 0 {
		errs = append(errs, syscall.Kill(child, syscall.SIGSTOP))
	}
	errs = append(errs, k.proc.Signal(syscall.SIGSTOP))
	if child > 0 {
		errs = append(errs, syscall.Kill(child, syscall.SIGKILL))
	}
	errs = append(errs, k.proc.Signal(syscall.SIGKILL))
	k.proc.Wait(context.Background())
	if child > 0 {
		// The child is re-parented (it is not our child): wait until it is
		// dead or a zombie.
		for range 500 {
			if ppid(child) == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	k.finish()
	return errors.Join(errs...)
}

// finish closes the log file and removes an own directory.
func (k *Keepalived) finish() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	k.stopped = true
	k.logFile.Close()
	if k.ownDir {
		os.RemoveAll(k.dir)
	}
}

// lockedBuffer is a bytes.Buffer safe for the process's writer and Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
