package statusapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon/statusapi"
)

type doc struct {
	Node string `json:"node"`
	N    int    `json:"n"`
}

// start runs a server on a fresh unix socket until the test ends.
func start(t *testing.T, o statusapi.Options) (*statusapi.Server, string) {
	t.Helper()
	spec := "unix:" + filepath.Join(t.TempDir(), "run", "lh.sock")
	if o.Listen == "" && o.Listener == nil {
		o.Listen = spec
	}
	if o.Status == nil {
		o.Status = func() any { return doc{Node: "n1", N: 7} }
	}
	s, err := statusapi.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	c := statusapi.NewClient(o.Listen)
	defer c.CloseIdleConnections()
	waitUntil(t, 5*time.Second, "server answers", func() bool { _, err := c.Get(context.Background(), "/status"); return err == nil })
	return s, o.Listen
}

// waitUntil polls cond every 20 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "lh.sock")
	l, err := statusapi.Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	// A live socket is not stale.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	if _, err := statusapi.Listen("unix:" + path); !errors.Is(err, statusapi.ErrInUse) {
		t.Errorf("listen on a live socket: %v, want ErrInUse", err)
	}
	// A stale one (left by a dead process) is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := statusapi.Listen("unix:" + path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := statusapi.Listen("unix:" + file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen on a regular file: %v", err)
	}
	for _, spec := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:80"} {
		if _, err := statusapi.Listen(spec); !errors.Is(err, statusapi.ErrNotLoopback) {
			t.Errorf("Listen(%q): %v, want ErrNotLoopback", spec, err)
		}
	}
	if _, err := statusapi.Listen("127.0.0.1"); err == nil {
		t.Error("Listen without a port: no error")
	}
	for _, spec := range []string{"127.0.0.1:0", "localhost:0"} {
		l, err := statusapi.Listen(spec)
		if err != nil {
			t.Errorf("Listen(%q): %v", spec, err)
			continue
		}
		l.Close()
	}
}

func TestStatusMetricsGetOnly(t *testing.T) {
	_, spec := start(t, statusapi.Options{Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "go_goroutines 12\n")
	})})
	c := statusapi.NewClient(spec)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	var d doc
	if err := c.Status(ctx, &d); err != nil || d != (doc{"n1", 7}) {
		t.Errorf("Status: %+v %v", d, err)
	}
	if m, err := c.Metrics(ctx); err != nil || m != "go_goroutines 12\n" {
		t.Errorf("Metrics: %q %v", m, err)
	}
	if _, err := c.Get(ctx, "/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("GET /nothing: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(spec, "unix:"))
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://x/status", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s, want 405", resp.Status)
	}
}

// TestIdleConnectionsReleased is issue 15: clients that leave connections
// behind (2,000 silent connections, and 300 clients that each make one
// request and never close their keep-alive connection) while a well
// behaved Client polls. The polls all succeed, the server never holds
// more than MaxConns connections, and once the idle timeout has passed
// its goroutines and heap are back to the baseline.
func TestIdleConnectionsReleased(t *testing.T) {
	const maxConns = 32
	s, spec := start(t, statusapi.Options{MaxConns: maxConns})
	path := strings.TrimPrefix(spec, "unix:")
	poller := statusapi.NewClient(spec)
	ctx := context.Background()
	if _, err := poller.Get(ctx, "/status"); err != nil {
		t.Fatal(err)
	}
	baseG, baseHeap := runtime.NumGoroutine(), heapInuse()

	var mu sync.Mutex
	var idle []net.Conn
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // silent connections
		for i := 0; i < 2000; i++ {
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			mu.Lock()
			idle = append(idle, c)
			mu.Unlock()
		}
	})
	var leakyFailed atomic.Int32
	wg.Go(func() { // the pre-fix lab client: a fresh transport per call, never closed
		for i := 0; i < 300; i++ {
			// Its connection may be the one evicted to make room (it
			// competes with 2,000 silent ones): a reset is its own doing,
			// not the server's, as long as most of its requests are served.
			if _, err := statusapi.NewClient(spec).Get(ctx, "/status"); err != nil {
				if leakyFailed.Add(1) == 1 {
					t.Logf("leaky client %d: %v", i, err)
				}
			}
		}
	})
	maxOpen := 0
	polls, failed := 0, 0
	var pollWG sync.WaitGroup
	pollWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var d doc
			if err := poller.Status(ctx, &d); err != nil {
				failed++
				t.Logf("poll: %v", err)
			}
			polls++
			maxOpen = max(maxOpen, s.Stats().Open)
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Wait()
	if n := leakyFailed.Load(); n > 30 {
		t.Errorf("%d of the leaky client's 300 requests failed (evictions should hit few of them)", n)
	}
	close(stop)
	pollWG.Wait()
	st := s.Stats()
	t.Logf("%d polls (%d failed) during the flood; server: max open %d, evicted %d, shed %d; goroutines %d (baseline %d)",
		polls, failed, maxOpen, st.Evicted, st.Shed, runtime.NumGoroutine(), baseG)
	// A poll's fresh connection can be evicted before its request arrives
	// when the flood outruns a loaded machine (it is the newest idle
	// connection, evicted after MaxConns newer ones): most polls must get
	// through, and one after the flood must.
	if failed*2 > polls {
		t.Errorf("%d of %d polls failed while others leaked connections", failed, polls)
	}
	var after doc
	if err := poller.Status(ctx, &after); err != nil {
		t.Errorf("poll after the flood: %v", err)
	}
	if maxOpen > maxConns || st.Open > maxConns {
		t.Errorf("server held %d connections (now %d), cap %d", maxOpen, st.Open, maxConns)
	}
	if st.Evicted == 0 {
		t.Error("no idle connection evicted at the cap")
	}

	// After the idle timeout nothing of the flood is left on the server,
	// although the silent connections are still open on the client side.
	waitUntil(t, 3*statusapi.DefaultIdleTimeout, "goroutines back to the baseline", func() bool {
		poller.CloseIdleConnections()
		return runtime.NumGoroutine() <= baseG+2
	})
	if h := heapInuse(); h > baseHeap+4<<20 {
		t.Errorf("heap in use %d KiB after the idle timeout, baseline %d KiB", h>>10, baseHeap>>10)
	} else {
		t.Logf("heap in use %d KiB, baseline %d KiB; goroutines %d, baseline %d", h>>10, baseHeap>>10, runtime.NumGoroutine(), baseG)
	}
	if o := s.Stats().Open; o > 1 {
		t.Errorf("%d connections still open on the server", o)
	}
	mu.Lock()
	defer mu.Unlock()
	idle[len(idle)-1].SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle[len(idle)-1].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a silent connection was not closed by the server: %v", err)
	}
	for _, c := range idle {
		c.Close()
	}
}

// TestShedWhenAllBusy: at the cap with every connection serving a request,
// a new connection is closed at once.
func TestShedWhenAllBusy(t *testing.T) {
	release := make(chan struct{})
	var inFlight sync.WaitGroup
	busy := false
	var mu sync.Mutex
	s, spec := start(t, statusapi.Options{MaxConns: 3, Status: func() any {
		mu.Lock()
		b := busy
		mu.Unlock()
		if b {
			inFlight.Done()
			<-release
		}
		return doc{}
	}})
	waitUntil(t, 5*time.Second, "the probe connection closed", func() bool { return s.Stats().Open == 0 })
	mu.Lock()
	busy = true
	mu.Unlock()
	inFlight.Add(3)
	var wg sync.WaitGroup
	for range 3 {
		c := statusapi.NewClient(spec) // own transports: three connections
		wg.Go(func() {
			defer c.CloseIdleConnections()
			var d doc
			c.Status(context.Background(), &d)
		})
	}
	inFlight.Wait()
	c, err := net.Dial("unix", strings.TrimPrefix(spec, "unix:"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("4th connection with 3 busy: read %v, want EOF (shed)", err)
	}
	c.Close()
	if st := s.Stats(); st.Shed == 0 || st.Open > 3 {
		t.Errorf("stats %+v: want a shed connection and at most 3 open", st)
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	close(release)
	wg.Wait()
}

func TestPprof(t *testing.T) {
	ctx := context.Background()
	_, spec := start(t, statusapi.Options{})
	c := statusapi.NewClient(spec)
	defer c.CloseIdleConnections()
	if _, err := c.Get(ctx, "/debug/pprof/"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("pprof without Options.Pprof: %v, want 404", err)
	}

	_, spec = start(t, statusapi.Options{Pprof: true, WriteTimeout: 500 * time.Millisecond})
	c2 := statusapi.NewClient(spec)
	defer c2.CloseIdleConnections()
	if b, err := c2.Get(ctx, "/debug/pprof/goroutine?debug=1"); err != nil || !strings.Contains(string(b), "goroutine profile") {
		t.Errorf("pprof goroutine: %v %.100s", err, b)
	}
	// A CPU profile longer than WriteTimeout still completes (the client's
	// own timeout is 2 s, so 1 s).
	if b, err := c2.Get(ctx, "/debug/pprof/profile?seconds=1"); err != nil || len(b) == 0 {
		t.Errorf("pprof profile of 1 s with WriteTimeout 500ms: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, o := range []statusapi.Options{
		{Listen: "127.0.0.1:9100", Pprof: true, Status: func() any { return nil }},
		{Listener: l, Pprof: true, Status: func() any { return nil }},
	} {
		if _, err := statusapi.NewServer(o); !errors.Is(err, statusapi.ErrPprofNotUnix) {
			t.Errorf("pprof on %q: %v, want ErrPprofNotUnix", o.Listen, err)
		}
	}
}

// TestRunStops: Run returns after its context ends and leaves no goroutine.
func TestRunStops(t *testing.T) {
	base := runtime.NumGoroutine()
	spec := "unix:" + filepath.Join(t.TempDir(), "lh.sock")
	s, err := statusapi.NewServer(statusapi.Options{Listen: spec, Status: func() any { return doc{} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := statusapi.NewClient(spec)
	waitUntil(t, 5*time.Second, "server answers", func() bool { _, err := c.Get(context.Background(), "/status"); return err == nil })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	c.CloseIdleConnections()
	waitUntil(t, 2*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
	if _, err := os.Stat(strings.TrimPrefix(spec, "unix:")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Run: %v", err)
	}
}

// TestIdleTimeout: below the cap, keep-alive connections a client leaves
// behind are closed by the server after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	s, spec := start(t, statusapi.Options{IdleTimeout: 300 * time.Millisecond})
	base := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		if _, err := statusapi.NewClient(spec).Get(context.Background(), "/status"); err != nil {
			t.Fatal(err)
		}
	}
	if o := s.Stats().Open; o < 10 {
		t.Errorf("only %d keep-alive connections open right after 20 leaky clients", o)
	}
	waitUntil(t, 3*time.Second, "idle connections closed", func() bool { return s.Stats().Open == 0 })
	waitUntil(t, 3*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
}
