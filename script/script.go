package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// MaxOutput bounds the output kept from one run (stdout and stderr together).
const MaxOutput = 4096

// PipeDelay is how long Run waits for the output pipes to close after the
// program exited or was killed (a background child may hold them).
const PipeDelay = time.Second

// Path is the PATH programs run with.
const Path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrTimeout: the program ran past its timeout and its group was killed.
var ErrTimeout = errors.New("script: timed out")

// ErrBadTimeout: Command.Timeout is not positive.
var ErrBadTimeout = errors.New("script: timeout must be > 0")

// ErrUnsafe: the program's path is not absolute, or its file could be
// changed by someone else than root or the daemon's user. The error
// wrapping it names the path.
var ErrUnsafe = errors.New("script: unsafe program")

// Command is one run of a program.
type Command struct {
	Path    string        // absolute path of an executable (checked with Check)
	Args    []string      // arguments after the program name
	Env     []string      // KEY=VALUE pairs (LEASEHOLD_*) added after PATH
	Timeout time.Duration // must be > 0
	RunAs   string        // user name to run as (daemon must be root); "" = daemon's user
}

// Result is the outcome of one run.
type Result struct {
	// Err is nil exactly when the program exited with status 0. Otherwise
	// it wraps ErrUnsafe (refused by Check), ErrTimeout,
	// *exec.ExitError (non-zero exit or signal), a start error, or the
	// context's error when the caller cancelled.
	Err      error
	Exit     int  // exit status; -1 when it did not exit by itself or never started
	TimedOut bool // killed at Timeout
	PID      int  // 0 when it never started
	Output   []byte
	Took     time.Duration
}

// OK reports success (exit status 0).
func (r Result) OK() bool { return r.Err == nil }

// Reason is a short human description of the outcome, stable across runs
// with the same outcome (it names no PID or duration), so callers can log
// only when it changes.
func (r Result) Reason() string {
	var ee *exec.ExitError
	switch {
	case r.Err == nil:
		return "exit 0"
	case r.TimedOut:
		return "timed out (process group killed)"
	case errors.As(r.Err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return "exit " + strconv.Itoa(r.Exit)
	default:
		return r.Err.Error()
	}
}

// Check refuses a program path that is not absolute, not an executable
// regular file, world-writable, in a world-writable directory, or owned by
// someone other than root or the daemon's user. Symlinks are resolved: the
// final file and its directory are checked, and so is the directory of the
// path as given. Refusals wrap ErrUnsafe and name the path; a file that
// cannot be read wraps the os error (os.ErrNotExist, ...).
func Check(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: %q: path not absolute", ErrUnsafe, path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("script: %s: %w", path, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("script: %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s: not an executable regular file", ErrUnsafe, real)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%w: %s: world-writable", ErrUnsafe, real)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s: owned by uid %d, not root or uid %d", ErrUnsafe, real, st.Uid, os.Geteuid())
	}
	for _, dir := range []string{filepath.Dir(real), filepath.Dir(path)} {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("script: %s: %w", path, err)
		}
		if di.Mode().Perm()&0o002 != 0 {
			return fmt.Errorf("%w: %s: directory %s is world-writable", ErrUnsafe, path, dir)
		}
	}
	return nil
}

// limited keeps the first MaxOutput bytes written to it. The buffer is a
// field, not embedded: an embedded bytes.Buffer's ReadFrom would let
// io.Copy bypass Write and the bound.
type limited struct{ buf bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := MaxOutput - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Run checks c.Path, runs it and waits for it. It never returns before the
// program has exited (or was killed) and been reaped.
func Run(ctx context.Context, c Command) Result {
	start := time.Now()
	res := Result{Exit: -1}
	if c.Timeout <= 0 {
		res.Err = ErrBadTimeout
		return res
	}
	if err := Check(c.Path); err != nil {
		res.Err = err
		return res
	}
	tctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, ErrTimeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, c.Path, c.Args...)
	cmd.Env = append([]string{Path}, c.Env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.RunAs != "" {
		cred, err := credential(c.RunAs)
		if err != nil {
			res.Err = err
			return res
		}
		cmd.SysProcAttr.Credential = cred
	}
	var out limited
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = PipeDelay
	if err := cmd.Start(); err != nil {
		res.Err = fmt.Errorf("script: start %s: %w", c.Path, err)
		res.Took = time.Since(start)
		return res
	}
	res.PID = cmd.Process.Pid
	err := cmd.Wait()
	res.Took = time.Since(start)
	res.Output = out.buf.Bytes()
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		res.Exit = cmd.ProcessState.ExitCode()
	}
	exited := cmd.ProcessState != nil && cmd.ProcessState.Exited()
	switch {
	case err == nil:
	case errors.Is(err, exec.ErrWaitDelay) && exited && res.Exit == 0:
		// Exited 0; a background child kept the output open: still success.
	case context.Cause(tctx) == ErrTimeout && !exited:
		res.TimedOut = true
		res.Err = fmt.Errorf("%w after %v: %s", ErrTimeout, c.Timeout, c.Path)
	case ctx.Err() != nil && !exited:
		res.Err = fmt.Errorf("script: %s: %w", c.Path, ctx.Err())
	default:
		res.Err = fmt.Errorf("script: %s: %w", c.Path, err)
	}
	return res
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script: user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("script: user %q: %w", name, err)
	}
	if os.Geteuid() != 0 && int(uid) != os.Geteuid() {
		return nil, fmt.Errorf("script: user %q: daemon is not root", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// CheckUser reports whether name can be used as Command.RunAs.
func CheckUser(name string) error {
	if name == "" {
		return nil
	}
	_, err := credential(name)
	return err
}
