package script_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/script/scripttest"
)

// keepalived's sample check, `script "bash -c '</dev/tcp/127.0.0.1/80'"`,
// against a listener the test opens: split on blanks it exited 127 on
// every run.
func TestRunBashDevTCP(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bash, _ = filepath.EvalSymlinks(bash)
	ln := scripttest.OpenPort(t)
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := script.ParseLine(fmt.Sprintf("%s -c '</dev/tcp/127.0.0.1/%d'", bash, port))
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 5 * time.Second
	if r := script.Run(t.Context(), c); !r.OK() {
		t.Fatalf("check against an open port: %s (%v), output %q", r.Reason(), r.Err, r.Output)
	}
	ln.Close()
	if r := script.Run(t.Context(), c); r.OK() || r.Exit != 1 {
		t.Errorf("check against a closed port: %s, want exit 1", r.Reason())
	}
}

// A script that forks a sleeping child: at the timeout both die.
func TestRunTimeoutKillsGroup(t *testing.T) {
	dir := scripttest.Dir(t)
	pidFile := filepath.Join(dir, "child.pid")
	p := scripttest.Write(t, dir, "hang", `sleep 1000 & echo $! > "$1"; wait`)
	start := time.Now()
	r := script.Run(t.Context(), script.Command{Path: p, Args: []string{pidFile}, Timeout: 200 * time.Millisecond})
	if !r.TimedOut || !errors.Is(r.Err, script.ErrTimeout) || r.Reason() != "timed out (process group killed)" {
		t.Fatalf("hanging script: timedOut %v, %s, err %v", r.TimedOut, r.Reason(), r.Err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run returned after %v, timeout 200ms", took)
	}
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("child pid %q: %v", b, err)
	}
	if !scripttest.Exited(t, r.PID, 5*time.Second) {
		t.Errorf("script %d survived its timeout", r.PID)
	}
	if !scripttest.Exited(t, pid, 5*time.Second) {
		t.Errorf("background child %d survived its script's timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Refusals name the path and what is wrong, and nothing runs.
func TestRunRefusesUnsafe(t *testing.T) {
	dir := scripttest.Dir(t)
	marker := filepath.Join(dir, "ran")
	ww := scripttest.Write(t, dir, "ww.sh", `touch "$1"`)
	if err := os.Chmod(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	inOpen := scripttest.Write(t, open, "in.sh", `touch "$1"`)
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, msg string }{
		{ww, ww + ": world-writable"},
		{inOpen, inOpen + ": directory " + open + " is world-writable"},
		{"ww.sh", `"ww.sh": path not absolute`},
		{dir, dir + ": not an executable regular file"},
	} {
		r := script.Run(t.Context(), script.Command{Path: c.path, Args: []string{marker}, Timeout: 5 * time.Second})
		if !errors.Is(r.Err, script.ErrUnsafe) || !strings.Contains(r.Err.Error(), c.msg) || r.PID != 0 {
			t.Errorf("Run(%s): pid %d, err %v; want ErrUnsafe saying %q", c.path, r.PID, r.Err, c.msg)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("an unsafe script ran")
	}
	if r := script.Run(context.Background(), script.Command{Path: filepath.Join(dir, "none"), Timeout: time.Second}); !errors.Is(r.Err, os.ErrNotExist) {
		t.Errorf("missing script: %v", r.Err)
	}
}
