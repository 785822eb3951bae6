package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
	"github.com/leasehold/leasehold/quorum/raft"
	"github.com/leasehold/leasehold/test/freeport"
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return out.String(), errb.String(), code
}

// holdGroup opens a session on b and acquires group; the session is
// renewed until the test ends.
func holdGroup(t *testing.T, b quorum.Backend, group string) quorum.Grant {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := b.Open(ctx)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; s.Close(context.Background()) })
	g, err := s.Acquire(ctx, group, 120)
	if err != nil {
		t.Fatalf("acquire %s: %v", group, err)
	}
	return g
}

func TestLeaseCLIEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	opts := quorum.DefaultOptions()
	opts.Node, opts.Addr = "lb1", "10.0.0.1"
	g := holdGroup(t, c.Backend(t, "lb1", opts), "VI_1")
	ep := strings.Join(c.Endpoints(), ",")

	out, errs, code := run(t, "lease", "ls", "--etcd", ep)
	if code != 0 || !strings.Contains(out, "VI_1") || !strings.Contains(out, "lb1") || !strings.Contains(out, fmt.Sprint(g.Epoch)) {
		t.Fatalf("lease ls = %d\n%s%s", code, out, errs)
	}
	out, _, code = run(t, "lease", "inspect", "VI_1", "--etcd", ep, "--json")
	var hs []struct {
		quorum.Holder
		TTLLeft string `json:"ttl_left"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &hs) != nil || len(hs) != 1 || hs[0].Epoch != g.Epoch || hs[0].Node != "lb1" {
		t.Fatalf("lease inspect --json = %d %q", code, out)
	}
	if ttl, err := time.ParseDuration(hs[0].TTLLeft); err != nil || ttl <= 0 {
		t.Errorf("lease inspect --json: ttl_left %q: want a positive duration like \"1.2s\"", hs[0].TTLLeft)
	}
	out, _, code = run(t, "lease", "inspect", "VI_9", "--etcd", ep)
	if code != 0 || !strings.Contains(out, "free") {
		t.Fatalf("inspect of a free group = %d %q", code, out)
	}
	// history is written after the grant, best effort: poll.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _, code = run(t, "lease", "history", "VI_1", "--etcd", ep)
		if code == 0 && strings.Contains(out, fmt.Sprint(g.Epoch)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, fmt.Sprint(g.Epoch)) {
		t.Fatalf("lease history lacks epoch %d:\n%s", g.Epoch, out)
	}
	// watch: a release shows up as a delete with the epoch.
	wout := &labdaemon.SyncBuffer{}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	done := make(chan int, 1)
	go func() { done <- cmdLeaseCtx(wctx, []string{"watch", "VI_2", "--etcd", ep}, wout, wout) }()
	time.Sleep(500 * time.Millisecond) // the watch is registered
	g2 := holdGroupRelease(t, c.Backend(t, "lb2", opts), "VI_2")
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(wout.String(), "delete") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	wcancel()
	<-done
	if w := wout.String(); !strings.Contains(w, "put") || !strings.Contains(w, fmt.Sprintf("delete  VI_2 epoch %d", g2.Epoch)) {
		t.Errorf("lease watch output lacks the put and the delete of epoch %d:\n%s", g2.Epoch, w)
	}
	if _, errs, code := run(t, "lease", "inspect", "--etcd", ep); code != 2 || !strings.Contains(errs, "GROUP") {
		t.Errorf("inspect without a group = %d %q", code, errs)
	}
	if _, errs, code := run(t, "lease", "ls"); code != 2 || !strings.Contains(errs, "-c FILE") {
		t.Errorf("ls without a quorum = %d %q", code, errs)
	}
}

// holdGroupRelease acquires group and releases it at once.
func holdGroupRelease(t *testing.T, b quorum.Backend, group string) quorum.Grant {
	t.Helper()
	ctx := context.Background()
	s, err := b.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	g, err := s.Acquire(ctx, group, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, g); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestWitnessAndLeaseCLIRaft runs three `leasehold witness` voters from
// config files (in-process), holds a group through the raft backend, and
// reads it with `leasehold lease`; then watches a release.
func TestWitnessAndLeaseCLIRaft(t *testing.T) {
	dir := t.TempDir()
	type voter struct{ id, raft, client string }
	vs := []voter{{"w1", freeport.Addr(t), freeport.Addr(t)}, {"w2", freeport.Addr(t), freeport.Addr(t)}, {"w3", freeport.Addr(t), freeport.Addr(t)}}
	var peers strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&peers, "      - {id: %s, addr: %q, client: %q}\n", v.id, v.raft, v.client)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, v := range vs {
		conf := filepath.Join(dir, v.id+".yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf("node: {name: %s}\nquorum:\n  backend: raft\n  raft:\n    bind: %q\n    client_bind: %q\n    data_dir: %s\n    peers:\n%s",
			v.id, v.raft, v.client, filepath.Join(dir, v.id), peers.String())), 0o644)
		wg.Go(func() {
			var errb bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- cmdWitnessCtx(ctx, []string{"-c", conf}, io.Discard, &errb) }()
			select {
			case code := <-done:
				if code != 0 && ctx.Err() == nil {
					t.Errorf("witness %s exited %d: %s", v.id, code, errb.String())
				}
			case <-ctx.Done():
				<-done
			}
		})
	}
	addrs := []string{vs[0].client, vs[1].client, vs[2].client}
	opts := quorum.ScaledOptions(time.Second)
	opts.Node = "lb1"
	b, err := raft.NewBackend(addrs, nil, opts, etcdtest.Logger("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	// Wait for a leader: a session opens.
	var g quorum.Grant
	deadline := time.Now().Add(15 * time.Second)
	for {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		s, err := b.Open(sctx)
		scancel()
		if err == nil {
			s.Close(context.Background())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no raft leader: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	g = holdGroup(t, b, "VI_1")
	raftFlag := strings.Join(addrs, ",")
	out, errs, code := run(t, "lease", "ls", "--raft", raftFlag)
	if code != 0 || !strings.Contains(out, "VI_1") || !strings.Contains(out, "lb1") || !strings.Contains(out, fmt.Sprint(g.Epoch)) {
		t.Fatalf("lease ls (raft) = %d\n%s%s", code, out, errs)
	}
	// A config file naming the raft quorum works too.
	conf := filepath.Join(dir, "w1.yaml")
	if out, errs, code := run(t, "lease", "inspect", "VI_1", "-c", conf); code != 0 || !strings.Contains(out, "lb1") {
		t.Fatalf("lease inspect -c = %d\n%s%s", code, out, errs)
	}
	if out, _, code := run(t, "lease", "history", "VI_1", "--raft", raftFlag); code != 0 || !strings.Contains(out, fmt.Sprint(g.Epoch)) {
		t.Fatalf("lease history (raft) = %d\n%s", code, out)
	}
}
