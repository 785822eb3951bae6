package netlab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 mounts named namespaces.
const netnsDir = "/run/netns"

func nsPath(name string) string { return filepath.Join(netnsDir, name) }

// createNetns creates a named namespace the way `ip netns add` does (so `ip
// netns exec` and other tools see it).
func createNetns(name string) error {
	if _, err := os.Stat(nsPath(name)); err == nil {
		return fmt.Errorf("netlab: namespace %s: %w", name, fs.ErrExist)
	}
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deleteNetns removes a named namespace; a missing one is not an error.
func deleteNetns(name string) error {
	if _, err := os.Stat(nsPath(name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out, err := exec.Command("ip", "netns", "del", name).CombinedOutput()
	if err != nil {
		if _, serr := os.Stat(nsPath(name)); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("netlab: ip netns del %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// doInNetns runs fn on a fresh OS thread switched into the namespace at
// path. The goroutine locks its thread and never unlocks it, so when fn
// returns the runtime destroys the thread instead of reusing it in a
// foreign namespace. Goroutines started by fn do not inherit the namespace.
// The main thread is the exception: the runtime cannot destroy it, and
// /proc/PID/ns/net (what Cleanup matches processes by) is its namespace,
// so on it the original namespace is restored before the thread is
// released; if that fails the thread stays locked (wedged) rather than
// run other goroutines in the lab's namespace.
func doInNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread is tainted and exits with the goroutine.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netlab: open own namespace: %w", err)
			return
		}
		defer orig.Close()
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace: %w", err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("netlab: setns %s: %w", path, err)
			return
		}
		err = fn()
		if unix.Gettid() == unix.Getpid() && unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
