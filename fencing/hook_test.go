package fencing_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/script/scripttest"
)

var env = fencing.FenceEnv{Group: "web", Epoch: 42, PrevHolder: "node2", PrevAddr: netip.MustParseAddr("192.0.2.7")}

func log(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func TestHookEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	h := fencing.Hook{Path: scripttest.Write(t, dir, "env.sh", `env > "$1"`), Args: []string{out}, Required: true}
	if err := fencing.RunHooks(t.Context(), []fencing.Hook{h}, env, log(t)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LEASEHOLD_GROUP=web", "LEASEHOLD_EPOCH=42", "LEASEHOLD_PREV_HOLDER=node2", "LEASEHOLD_PREV_ADDR=192.0.2.7"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("hook environment lacks %s:\n%s", want, b)
		}
	}
	t.Setenv("LEASEHOLD_SECRET", "x")
	if err := fencing.RunHooks(t.Context(), []fencing.Hook{h}, env, log(t)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "LEASEHOLD_SECRET") {
		t.Errorf("daemon environment leaked into the hook:\n%s", b)
	}
}

func TestHookTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The hook forks a grandchild and waits: both must die at the timeout.
	h := fencing.Hook{Path: scripttest.Write(t, dir, "hang.sh", `sleep 60 & echo $! > "$1"; wait`),
		Args: []string{pidFile}, Timeout: 300 * time.Millisecond, Required: true}
	start := time.Now()
	err := fencing.RunHooks(t.Context(), []fencing.Hook{h}, env, log(t))
	took := time.Since(start)
	if !errors.Is(err, script.ErrTimeout) {
		t.Fatalf("hanging required hook: err = %v, want script.ErrTimeout", err)
	}
	if took > 10*time.Second {
		t.Errorf("RunHooks returned after %v, not at the 300ms timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("bad pid %q", b)
	}
	if !scripttest.Exited(t, pid, 5*time.Second) {
		t.Errorf("grandchild %d survived the hook's timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestHookRefusesUnsafe(t *testing.T) {
	dir := t.TempDir()
	ok := scripttest.Write(t, dir, "ok.sh", "exit 0")
	if err := fencing.CheckHook(fencing.Hook{Path: ok}); err != nil {
		t.Fatalf("safe hook refused: %v", err)
	}
	ww := scripttest.Write(t, dir, "ww.sh", "exit 0")
	if err := os.Chmod(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	wwDir := filepath.Join(dir, "open")
	os.Mkdir(wwDir, 0o755)
	inWW := scripttest.Write(t, wwDir, "h.sh", "exit 0")
	if err := os.Chmod(wwDir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sh")
	if err := os.Symlink(inWW, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ww, inWW, link, "ok.sh"} {
		err := fencing.RunHooks(t.Context(), []fencing.Hook{{Path: p, Required: true}}, env, log(t))
		if !errors.Is(err, fencing.ErrHookUnsafe) {
			t.Errorf("hook %s: err = %v, want ErrHookUnsafe", p, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(ok, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if err := fencing.CheckHook(fencing.Hook{Path: ok}); !errors.Is(err, fencing.ErrHookUnsafe) {
			t.Errorf("hook owned by another user: err = %v, want ErrHookUnsafe", err)
		}
	}
}

func TestHookRequiredVersusBestEffort(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	fail := scripttest.Write(t, dir, "fail.sh", "echo broken >&2; exit 3")
	mark := scripttest.Write(t, dir, "mark.sh", `echo x >> "$1"`)
	after := fencing.Hook{Path: mark, Args: []string{marker}, Required: true}

	if err := fencing.RunHooks(t.Context(), []fencing.Hook{{Path: fail}, after}, env, log(t)); err != nil {
		t.Errorf("best-effort failure returned %v", err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "x\n" {
		t.Errorf("hook after a best-effort failure did not run (marker %q)", b)
	}
	err := fencing.RunHooks(t.Context(), []fencing.Hook{{Path: fail, Required: true}, after}, env, log(t))
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("required failure: err = %v, want exit status 3", err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "x\n" {
		t.Errorf("hook after a required failure ran (marker %q)", b)
	}
}
