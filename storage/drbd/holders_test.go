package drbd

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Holders finds a process by its cwd, and by an open file, on a
// filesystem of its own (/dev/shm, a tmpfs); nothing is killed.
func TestHoldersFindsCwdAndOpenFiles(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "lh-holders-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(dir)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	var root syscall.Stat_t
	if err := syscall.Stat("/", &root); err != nil || root.Dev == st.Dev {
		t.Skip("/dev/shm is not a filesystem of its own here")
	}
	inCwd := exec.Command("sleep", "30")
	inCwd.Dir = dir
	if err := os.WriteFile(dir+"/f", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir + "/f")
	if err != nil {
		t.Fatal(err)
	}
	// Inherited as fd 3, open before the child runs (no race with a shell
	// opening it).
	withFile := exec.Command("sleep", "30")
	withFile.ExtraFiles = []*os.File{f}
	for _, c := range []*exec.Cmd{inCwd, withFile} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { c.Process.Kill(); c.Wait() }()
	}
	f.Close() // only the child holds it now
	pids, err := Holders("/proc", st.Dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{inCwd, withFile} {
		if !slices.Contains(pids, c.Process.Pid) {
			t.Errorf("pid %d (%s) not found among %v", c.Process.Pid, strings.Join(c.Args, " "), pids)
		}
	}
	if slices.Contains(pids, os.Getpid()) || slices.Contains(pids, 1) {
		t.Errorf("itself or PID 1 listed: %v", pids)
	}
}

// killHolders refuses a path that is not a filesystem of the device.
func TestKillHoldersRefusesANonMountpoint(t *testing.T) {
	if _, err := killHolders(t.TempDir(), "/dev/null"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err %v", err)
	}
}
