package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/lab/vm/agent"
)

// pipeVM is a VM without qemu whose agent connection is a net.Pipe to an
// in-process agent.Server; every dial makes a fresh pipe.
func pipeVM(t *testing.T) (*VM, string) {
	t.Helper()
	dir := t.TempDir()
	srv := agent.NewServer(dir, "/bin/sh")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	v := &VM{cfg: Config{Name: "pipe"}, exited: make(chan struct{})}
	v.agent = newLineConn(func(context.Context) (net.Conn, error) {
		host, guest := net.Pipe()
		wg.Go(func() {
			_ = srv.Serve(ctx, guest)
			guest.Close()
		})
		return host, nil
	}, agentKey, agent.MaxReplyLine)
	t.Cleanup(func() {
		v.agent.close()
		cancel()
		wg.Wait()
	})
	return v, dir
}

func TestAgentExec(t *testing.T) {
	v, dir := pipeVM(t)
	ctx := t.Context()
	out, rc, err := v.Exec(ctx, "pwd; echo out; echo err >&2; exit 3", 5*time.Second)
	if err != nil || rc != 3 || out != dir+"\nout\nerr\n" {
		t.Fatalf("exec = %q, %d, %v; want %q, 3, nil", out, rc, err, dir+"\nout\nerr\n")
	}
	if _, rc, _ := v.Exec(ctx, "kill -TERM $$", 5*time.Second); rc != 128+int(syscall.SIGTERM) {
		t.Errorf("script killed by SIGTERM: rc %d, want %d", rc, 128+int(syscall.SIGTERM))
	}

	// Concurrent requests share the connection and each gets its own reply.
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			out, rc, err := v.Exec(ctx, fmt.Sprintf("sleep 0.3; echo %d", i), 5*time.Second)
			if err != nil || rc != 0 || out != fmt.Sprintf("%d\n", i) {
				t.Errorf("exec %d = %q, %d, %v", i, out, rc, err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("8 concurrent 0.3 s execs took %v: not concurrent?", d)
	}

	out, _, err = v.Exec(ctx, "head -c 1100000 /dev/zero | tr '\\0' a", 5*time.Second)
	if err != nil || !strings.HasPrefix(out, strings.Repeat("a", agent.MaxOutput)+"\n[output truncated") {
		t.Errorf("big output: %d bytes, %v; want %d bytes of 'a' and a truncation note", len(out), err, agent.MaxOutput)
	}
}

func TestAgentReadFile(t *testing.T) {
	v, dir := pipeVM(t)
	f := filepath.Join(dir, "proc")
	if err := os.WriteFile(f, []byte("version: 8.4.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := v.ReadFile(t.Context(), f); err != nil || string(b) != "version: 8.4.11\n" {
		t.Fatalf("read = %q, %v", b, err)
	}
	if _, err := v.ReadFile(t.Context(), filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("read of a missing file: %v", err)
	}
}

func TestAgentExecTimeoutKillsGroup(t *testing.T) {
	v, dir := pipeVM(t)
	ctx := t.Context()
	start := time.Now()
	out, rc, err := v.Exec(ctx, "sleep 30 & echo $! > bg.pid; echo started; wait", 300*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || rc != -1 || out != "started\n" {
		t.Fatalf("exec = %q, %d, %v; want \"started\\n\", -1, ErrTimeout", out, rc, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout of 300 ms returned after %v", d)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bg.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// Killed, and reaped by the shell's parent chain or about to be: no
	// running process with that PID in our group any more.
	deadline := time.Now().Add(2 * time.Second)
	for alive := true; alive; {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		alive = err == nil && !strings.Contains(string(st), ") Z ")
		if alive && time.Now().After(deadline) {
			t.Fatalf("background sleep %d of the timed-out script still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentSpawnAliveSignal(t *testing.T) {
	v, dir := pipeVM(t)
	ctx := t.Context()
	log := filepath.Join(dir, "sleep.log")
	p, err := v.Spawn(ctx, []string{"sh", "-c", "echo hello; exec sleep 100"}, log)
	if err != nil || p.PID <= 0 || p.StartTime == 0 {
		t.Fatalf("spawn = %+v, %v", p, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGKILL) })
	if ok, err := v.Alive(ctx, p); !ok || err != nil {
		t.Fatalf("alive = %v, %v; want true", ok, err)
	}
	if sid, _ := unix.Getsid(p.PID); sid != p.PID {
		t.Errorf("spawned process is in session %d, want its own (%d)", sid, p.PID)
	}
	other := Proc{PID: p.PID, StartTime: p.StartTime + 1}
	if ok, _ := v.Alive(ctx, other); ok {
		t.Errorf("alive with the wrong start time = true")
	}
	if err := v.Signal(ctx, other, syscall.SIGTERM); err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("signal with the wrong start time: %v, want a 'not sent' error", err)
	}
	if ok, _ := v.Alive(ctx, p); !ok {
		t.Fatalf("process died after a refused signal")
	}
	deadline := time.Now().Add(3 * time.Second)
	for b, _ := os.ReadFile(log); string(b) != "hello\n"; b, _ = os.ReadFile(log) {
		if time.Now().After(deadline) {
			t.Fatalf("log = %q, want \"hello\\n\"", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := v.Signal(ctx, p, syscall.SIGTERM); err != nil {
		t.Fatalf("signal: %v", err)
	}
	for {
		ok, err := v.Alive(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still alive 3 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Spawn(ctx, []string{"/nonexistent/cmd"}, log); err == nil {
		t.Errorf("spawn of a missing command: no error")
	}
}

func TestAgentHTTP(t *testing.T) {
	v, dir := pipeVM(t)
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	ts.Listener = l
	ts.Start()
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	status, body, err := v.HTTP(ctx, sock, "GET", "/v1/status", nil)
	if err != nil || status != 200 || string(body) != "GET /v1/status " {
		t.Errorf("GET = %d %q %v", status, body, err)
	}
	status, body, err = v.HTTP(ctx, sock, "POST", "/v1/x", []byte(`{"a":1}`))
	if err != nil || status != 200 || string(body) != `POST /v1/x {"a":1}` {
		t.Errorf("POST = %d %q %v", status, body, err)
	}
	if _, _, err := v.HTTP(ctx, filepath.Join(dir, "none.sock"), "GET", "/", nil); err == nil {
		t.Errorf("HTTP to a missing socket: no error")
	}
}

func TestAgentErrorsAndReconnect(t *testing.T) {
	v, _ := pipeVM(t)
	ctx := t.Context()
	if _, err := agentCall(ctx, v.agent, agent.Request{Op: "frobnicate"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Errorf("unknown op: %v", err)
	}
	if _, _, err := v.Exec(ctx, strings.Repeat("#", agent.MaxLine), time.Second); err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("oversized request: %v, want 'not sent'", err)
	}

	// A dropped connection fails the calls in flight; the next call dials again.
	done := make(chan error, 1)
	go func() {
		_, _, err := v.Exec(ctx, "sleep 2", 5*time.Second)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	v.agent.close()
	if err := <-done; !errors.Is(err, errDropped) {
		t.Errorf("call in flight over a dropped connection: %v, want errDropped", err)
	}
	if out, rc, err := v.Exec(ctx, "echo again", time.Second); err != nil || rc != 0 || out != "again\n" {
		t.Errorf("exec after reconnect = %q, %d, %v", out, rc, err)
	}
}

// TestAgentWire speaks the protocol raw: limits the client never hits.
func TestAgentWire(t *testing.T) {
	srv := agent.NewServer(t.TempDir(), "/bin/sh")
	host, guest := net.Pipe()
	defer host.Close()
	go func() { _ = srv.Serve(t.Context(), guest); guest.Close() }()
	br := bufio.NewReader(host)
	read := func() agent.Response {
		t.Helper()
		_ = host.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		var r agent.Response
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("reply %q: %v", line, err)
		}
		return r
	}
	write := func(s string) {
		_ = host.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(host, s); err != nil {
			t.Error(err)
		}
	}

	go write(strings.Repeat("x", agent.MaxLine+10) + "\n")
	if r := read(); r.ID != 0 || !strings.Contains(r.Err, "discarded") {
		t.Errorf("long line: %+v", r)
	}
	write("not json\n")
	if r := read(); r.Err == "" {
		t.Errorf("garbage line: %+v", r)
	}

	// MaxInFlight sleeping execs, then one more: refused at once.
	var b strings.Builder
	for i := 1; i <= agent.MaxInFlight+1; i++ {
		fmt.Fprintf(&b, `{"id":%d,"op":"exec","script":"sleep 1","timeout_ms":5000}`+"\n", i)
	}
	go write(b.String())
	r := read()
	if r.ID != agent.MaxInFlight+1 || !strings.Contains(r.Err, "in flight") {
		t.Fatalf("request %d over the bound: %+v, want an 'in flight' refusal first", agent.MaxInFlight+1, r)
	}
	for range agent.MaxInFlight {
		if r := read(); r.Err != "" || r.RC == nil || *r.RC != 0 {
			t.Errorf("exec within the bound: %+v", r)
		}
	}
}
