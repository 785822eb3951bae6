package drbd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Holders lists the processes (other than this one and PID 1) that use
// the filesystem whose device is dev, scanning the proc tree at procDir
// as fuser -m does: a process's cwd, root, executable, open files and
// mapped files. Processes that vanish during the scan are skipped; a
// process whose links cannot be read (another user's, without
// privileges) is skipped too, so an unprivileged caller sees only its own.
func Holders(procDir string, dev uint64) ([]int, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("holders: %w", err)
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == 1 {
			continue
		}
		if holds(filepath.Join(procDir, e.Name()), dev) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// holds reports whether the process at dir (/proc/PID) uses dev.
func holds(dir string, dev uint64) bool {
	on := func(link string) bool {
		var st syscall.Stat_t
		// stat follows the magic link to the file itself.
		return syscall.Stat(link, &st) == nil && st.Dev == dev
	}
	for _, l := range []string{"cwd", "root", "exe"} {
		if on(filepath.Join(dir, l)) {
			return true
		}
	}
	fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
	for _, fd := range fds {
		if on(filepath.Join(dir, "fd", fd.Name())) {
			return true
		}
	}
	f, err := os.Open(filepath.Join(dir, "maps"))
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		if fs := strings.Fields(sc.Text()); len(fs) >= 6 && fs[3] == want && fs[4] != "0" {
			return true
		}
	}
	return false
}

// killHolders SIGKILLs the processes holding the filesystem of device
// mounted on mountpoint and returns their PIDs. It refuses unless
// mountpoint is the root of a filesystem on device: a mountpoint unmounted
// meanwhile would otherwise name its parent's filesystem (the root one,
// everyone's).
func killHolders(mountpoint, device string) ([]int, error) {
	var st, parent, blk syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		return nil, fmt.Errorf("holders of %s: %w", mountpoint, err)
	}
	if err := syscall.Stat(filepath.Join(mountpoint, ".."), &parent); err != nil {
		return nil, fmt.Errorf("holders of %s: %w", mountpoint, err)
	}
	if err := syscall.Stat(device, &blk); err != nil {
		return nil, fmt.Errorf("holders of %s: %w", mountpoint, err)
	}
	if st.Dev == parent.Dev || blk.Mode&syscall.S_IFMT != syscall.S_IFBLK || blk.Rdev != st.Dev {
		return nil, fmt.Errorf("holders of %s: not a filesystem of %s mounted there (refusing to kill anything)", mountpoint, device)
	}
	pids, err := Holders("/proc", st.Dev)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return pids, errors.Join(errs...)
}
