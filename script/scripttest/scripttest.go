// Package scripttest helps tests of programs run by package script: it
// writes test scripts, opens a loopback port for TCP checks to probe, and
// waits for processes that are not the test's children (a script's
// background child) to end.
package scripttest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a private directory for test scripts: t.TempDir is 0700, so
// script.Check accepts it even though /tmp is world-writable.
func Dir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "scripts")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// Write writes an executable /bin/sh script with body into dir.
func Write(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Exited reports whether process pid ends within d (a zombie counts as
// ended). SIGKILL is delivered asynchronously: a process killed a moment
// ago may still be running. It waits on a pidfd, so it needs no polling and
// works for processes that are not the caller's children.
func Exited(t testing.TB, pid int, d time.Duration) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(d.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd %d: %v", pid, err)
		}
		return n > 0
	}
}

// OpenPort listens on a loopback TCP port and accepts and closes every
// connection until the listener is closed (at the end of the test at the
// latest): a service for a check such as bash's </dev/tcp/127.0.0.1/PORT.
func OpenPort(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}
