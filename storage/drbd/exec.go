package drbd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/leasehold/leasehold/script"
)

// Command is one program run: an absolute path, its arguments, the
// LEASEHOLD_* variables it is given, and its timeout.
type Command struct {
	Path    string
	Args    []string
	Env     []string
	Timeout time.Duration
}

func (c Command) String() string { return strings.Join(append([]string{c.Path}, c.Args...), " ") }

// Executor is the OS edge of a Resource: the programs it runs (drbdadm,
// mount, umount, systemctl, the user's scripts), the files it reads
// (/proc/drbd, /proc/self/mountinfo) and the processes it kills (the
// holders of a busy mount). OS is the real one; drbdtest.Host a fake for
// unit tests.
type Executor interface {
	// Run runs c and waits for it, bounded by ctx and c.Timeout; the
	// output is stdout and stderr together. A non-zero exit is an error.
	Run(ctx context.Context, c Command) (output []byte, err error)
	// ReadFile reads a whole (proc) file.
	ReadFile(path string) ([]byte, error)
	// KillHolders kills (SIGKILL) the processes using the filesystem of
	// device mounted on mountpoint (cwd, root, open or mapped files, as
	// fuser -km finds them) and returns their PIDs.
	KillHolders(mountpoint, device string) ([]int, error)
}

// Paths are the programs and files a Resource uses; DefaultPaths are
// Debian's (usr-merged).
type Paths struct {
	Drbdadm, Mount, Umount, Systemctl string
	ProcDRBD, Mountinfo               string
}

// DefaultPaths returns Debian's paths.
func DefaultPaths() Paths {
	return Paths{
		Drbdadm:   "/usr/sbin/drbdadm",
		Mount:     "/usr/bin/mount",
		Umount:    "/usr/bin/umount",
		Systemctl: "/usr/bin/systemctl",
		ProcDRBD:  "/proc/drbd",
		Mountinfo: "/proc/self/mountinfo",
	}
}

// OS is the real Executor: programs run through script.Run (the path
// checked with script.Check first: absolute, not world-writable, owned by
// root or the daemon's user; its own process group, killed as a whole at
// the timeout; a minimal environment).
type OS struct{}

// Run implements Executor.
func (OS) Run(ctx context.Context, c Command) ([]byte, error) {
	r := script.Run(ctx, script.Command{Path: c.Path, Args: c.Args, Env: c.Env, Timeout: c.Timeout})
	if r.Err != nil {
		return r.Output, fmt.Errorf("%s: %s: %w", c, r.Reason(), r.Err)
	}
	return r.Output, nil
}

// ReadFile implements Executor.
func (OS) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// KillHolders implements Executor by scanning /proc (no fuser needed:
// psmisc is not always installed, busybox builds often lack it). It
// refuses unless mountpoint is a filesystem of device.
func (OS) KillHolders(mountpoint, device string) ([]int, error) {
	return killHolders(mountpoint, device)
}

// ExitError is a program's non-zero exit as fakes report it (OS's
// errors wrap *exec.ExitError).
type ExitError struct {
	Code   int
	Output string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("exit %d: %s", e.Code, strings.TrimSpace(e.Output))
}
