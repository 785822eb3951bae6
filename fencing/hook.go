package fencing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// DefaultHookTimeout applies to a Hook with no Timeout.
const DefaultHookTimeout = 10 * time.Second

// hookPath is the PATH hooks run with; nothing else of the daemon's
// environment is passed on (it may hold quorum credentials).
const hookPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrHookUnsafe: the hook's file could be changed by someone else than
// root or the daemon's user.
var ErrHookUnsafe = errors.New("fencing: unsafe hook")

// Hook is a peer-fence program the new owner runs before it claims the VIP
// (STONITH, fencing the old MySQL master, ...).
type Hook struct {
	Path     string        // absolute path of an executable
	Args     []string      // arguments after the program name
	Timeout  time.Duration // whole process group killed after it; 0 = DefaultHookTimeout
	Required bool          // failure stops the takeover; otherwise only logged
	RunAs    string        // user name to run as (daemon must be root); "" = daemon's user
}

// FenceEnv is what a hook is told, as LEASEHOLD_* environment variables.
type FenceEnv struct {
	Group      string     // LEASEHOLD_GROUP
	Epoch      uint64     // LEASEHOLD_EPOCH: the new grant's epoch
	PrevHolder string     // LEASEHOLD_PREV_HOLDER: node name of the last owner, "" if unknown
	PrevAddr   netip.Addr // LEASEHOLD_PREV_ADDR: its address, "" if unknown
}

func (e FenceEnv) environ() []string {
	prev := ""
	if e.PrevAddr.IsValid() {
		prev = e.PrevAddr.String()
	}
	return []string{hookPath,
		"LEASEHOLD_GROUP=" + e.Group,
		"LEASEHOLD_EPOCH=" + strconv.FormatUint(e.Epoch, 10),
		"LEASEHOLD_PREV_HOLDER=" + e.PrevHolder,
		"LEASEHOLD_PREV_ADDR=" + prev,
	}
}

// CheckHook verifies that h.Path is absolute and resolves to a regular
// executable file owned by root or the current user, not writable by
// everyone, in a directory not writable by everyone (symlinks are resolved
// and the final file and its directory are checked).
func CheckHook(h Hook) error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("%w: %q: path not absolute", ErrHookUnsafe, h.Path)
	}
	real, err := filepath.EvalSymlinks(h.Path)
	if err != nil {
		return fmt.Errorf("fencing: hook %s: %w", h.Path, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("fencing: hook %s: %w", h.Path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s: not an executable regular file", ErrHookUnsafe, real)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%w: %s: world-writable", ErrHookUnsafe, real)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s: owned by uid %d, not root or uid %d", ErrHookUnsafe, real, st.Uid, os.Geteuid())
	}
	for _, dir := range []string{filepath.Dir(real), filepath.Dir(h.Path)} {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("fencing: hook %s: %w", h.Path, err)
		}
		if di.Mode().Perm()&0o002 != 0 {
			return fmt.Errorf("%w: %s: directory %s is world-writable", ErrHookUnsafe, h.Path, dir)
		}
	}
	return nil
}

// RunHooks runs hooks one after the other with env. A required hook that
// fails (unsafe, cannot start, non-zero exit, timeout) stops the run and
// its error is returned; a best-effort one is logged and the run goes on.
// Each hook runs in its own process group, killed (SIGKILL) as a whole at
// its timeout or when ctx ends.
func RunHooks(ctx context.Context, hooks []Hook, env FenceEnv, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, h := range hooks {
		start := time.Now()
		out, err := runHook(ctx, h, env)
		attrs := []any{"group", env.Group, "epoch", env.Epoch, "hook", h.Path, "took", time.Since(start), "output", string(out)}
		switch {
		case err == nil:
			log.Info("fencing: hook done", attrs...)
		case h.Required:
			log.Error("fencing: required hook failed", append(attrs, "err", err)...)
			return fmt.Errorf("fencing: required hook %s: %w", h.Path, err)
		default:
			log.Warn("fencing: best-effort hook failed", append(attrs, "err", err)...)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fencing: hooks: %w", err)
		}
	}
	return nil
}

const maxHookOutput = 4096

// limited keeps the first maxHookOutput bytes written to it. The buffer is
// a named field, not embedded: an embedded bytes.Buffer would give limited
// a ReadFrom that io.Copy prefers, bypassing the cap.
type limited struct{ buf bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := maxHookOutput - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Bytes returns what was kept.
func (l *limited) Bytes() []byte { return l.buf.Bytes() }

func runHook(ctx context.Context, h Hook, env FenceEnv) ([]byte, error) {
	if err := CheckHook(h); err != nil {
		return nil, err
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Path, h.Args...)
	cmd.Env = env.environ()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if h.RunAs != "" {
		cred, err := credential(h.RunAs)
		if err != nil {
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
	}
	var out limited
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // grandchildren holding the output pipe
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("killed after %v: %w (%w)", timeout, ctx.Err(), err)
	}
	return out.Bytes(), err
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("fencing: hook user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("fencing: hook user %q: %w", name, err)
	}
	if os.Geteuid() != 0 && int(uid) != os.Geteuid() {
		return nil, fmt.Errorf("fencing: hook user %q: daemon is not root", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
