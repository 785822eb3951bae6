package script

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script/scripttest"
)

func TestRunOutcomes(t *testing.T) {
	t.Setenv("LEASEHOLD_TEST_SECRET", "x")
	dir := t.TempDir() // 0700: accepted by Check
	cases := []struct {
		name     string
		body     string
		env      []string
		timeout  time.Duration
		ok       bool
		timedOut bool
		exit     int
		reason   string
		output   string
		is       error
	}{
		{name: "exit 0", body: "echo hello", ok: true, exit: 0, reason: "exit 0", output: "hello\n"},
		{name: "exit 3", body: "echo bad >&2; exit 3", exit: 3, reason: "exit 3", output: "bad\n"},
		{name: "signal", body: "kill -TERM $$", exit: -1, reason: "killed by signal terminated"},
		{name: "timeout", body: "sleep 1000", timeout: 100 * time.Millisecond, timedOut: true, exit: -1, reason: "timed out (process group killed)", is: ErrTimeout},
		{name: "environment", body: `echo "$PATH|$FOO|${LEASEHOLD_TEST_SECRET:-unset}|$(pwd)"`, env: []string{"FOO=bar"}, ok: true, reason: "exit 0",
			output: strings.TrimPrefix(Path, "PATH=") + "|bar|unset|/\n"},
		{name: "output bounded", body: "head -c 100000 /dev/zero | tr '\\0' a", ok: true, reason: "exit 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := scripttest.Write(t, dir, strings.ReplaceAll(c.name, " ", "_"), c.body)
			timeout := c.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			r := Run(context.Background(), Command{Path: p, Env: c.env, Timeout: timeout})
			if r.OK() != c.ok || r.TimedOut != c.timedOut || r.Exit != c.exit || r.Reason() != c.reason {
				t.Errorf("got ok %v timedOut %v exit %d reason %q err %v; want %v %v %d %q", r.OK(), r.TimedOut, r.Exit, r.Reason(), r.Err, c.ok, c.timedOut, c.exit, c.reason)
			}
			if c.output != "" && string(r.Output) != c.output {
				t.Errorf("output %q, want %q", r.Output, c.output)
			}
			if len(r.Output) > MaxOutput {
				t.Errorf("kept %d bytes of output, max %d", len(r.Output), MaxOutput)
			}
			if c.is != nil && !errors.Is(r.Err, c.is) {
				t.Errorf("err %v, want %v", r.Err, c.is)
			}
			if r.PID == 0 {
				t.Errorf("no PID recorded")
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	p := scripttest.Write(t, dir, "ok", "exit 0")
	if r := Run(context.Background(), Command{Path: p}); !errors.Is(r.Err, ErrBadTimeout) || r.PID != 0 {
		t.Errorf("zero timeout: %v (pid %d)", r.Err, r.PID)
	}
	if err := os.Chmod(p, 0o775|0o002); err != nil {
		t.Fatal(err)
	}
	if r := Run(context.Background(), Command{Path: p, Timeout: time.Second}); !errors.Is(r.Err, ErrUnsafe) || r.PID != 0 {
		t.Errorf("world-writable: %v (pid %d)", r.Err, r.PID)
	}
	r := Run(context.Background(), Command{Path: filepath.Join(dir, "missing"), Timeout: time.Second})
	if !errors.Is(r.Err, os.ErrNotExist) || r.OK() {
		t.Errorf("missing: %v", r.Err)
	}
	if r.Reason() == "" || r.Reason() != Run(context.Background(), Command{Path: filepath.Join(dir, "missing"), Timeout: time.Second}).Reason() {
		t.Errorf("reason of a missing script is not stable: %q", r.Reason())
	}
}

func TestRunCancelled(t *testing.T) {
	dir := t.TempDir()
	p := scripttest.Write(t, dir, "hang", "sleep 1000")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := Run(ctx, Command{Path: p, Timeout: time.Hour})
	if r.OK() || r.TimedOut || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("cancelled run: ok %v timedOut %v err %v", r.OK(), r.TimedOut, r.Err)
	}
}

// TestRunAs runs a script as nobody (needs root).
func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("LEASEHOLD_STRICT") == "1" {
			t.Fatal("LEASEHOLD_STRICT=1 and not root: RunAs needs root")
		}
		t.Skip("skipping: RunAs needs root (set LEASEHOLD_STRICT=1 to fail instead)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	dir := t.TempDir()
	// nobody must be able to reach the script: open up the test's own dirs.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := scripttest.Write(t, dir, "id", "id -u")
	r := Run(context.Background(), Command{Path: p, Timeout: 5 * time.Second, RunAs: "nobody"})
	if !r.OK() || strings.TrimSpace(string(r.Output)) != u.Uid {
		t.Errorf("as nobody: %v, output %q, want uid %s", r.Err, r.Output, u.Uid)
	}
	if err := CheckUser("no-such-user-leasehold"); err == nil {
		t.Errorf("CheckUser accepted an unknown user")
	}
}

// BenchmarkRun prints the cost of one check run (fork, exec of /bin/sh,
// wait): what a vrrp_script costs per interval.
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "true")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if r := Run(context.Background(), Command{Path: p, Timeout: 5 * time.Second}); !r.OK() {
			b.Fatal(r.Err)
		}
	}
}
