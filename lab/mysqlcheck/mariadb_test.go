package mysqlcheck_test

import (
	"context"
	"database/sql"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// vip stands in for the VIP on loopback: it forwards connections to the
// current owner's server; Move closes every open connection (the old
// owner's TCP sessions die with the VIP) and sends new ones to addr.
type vip struct {
	ln     net.Listener
	target atomic.Value
	mu     sync.Mutex
	conns  []net.Conn
}

func newVIP(t *testing.T) *vip {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &vip{ln: ln}
	v.target.Store("")
	t.Cleanup(func() { ln.Close(); v.Move("") })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			to := v.target.Load().(string)
			if to == "" {
				c.Close()
				continue
			}
			s, err := net.DialTimeout("tcp", to, time.Second)
			if err != nil {
				c.Close()
				continue
			}
			v.mu.Lock()
			v.conns = append(v.conns, c, s)
			v.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return v
}

func (v *vip) Move(addr string) {
	v.target.Store(addr)
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.conns {
		c.Close()
	}
	v.conns = nil
}

// A graceful switchover between the two masters of a real MariaDB pair,
// under the resource's promote/demote, with the client writing through
// the "VIP" every 5 ms: no acknowledged write lost, no split-brain write,
// no divergence, no replication error. Then both servers are made
// writable by hand with a client on each (what keepalived does when both
// nodes think they are master): the audit counts the split-brain writes.
func TestSwitchoverAgainstMariaDB(t *testing.T) {
	p := mysqltest.StartPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cred := filepath.Join(t.TempDir(), "root.cnf")
	if err := os.WriteFile(cred, []byte("user = root\npassword = "+mysqltest.RootPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.A.Exec(ctx, "CREATE DATABASE leasehold_check", mysqlcheck.Schema,
		"CREATE USER app@'127.0.0.1' IDENTIFIED BY 'app'",
		"GRANT SELECT, INSERT ON leasehold_check.* TO app@'127.0.0.1'", "GRANT SELECT ON leasehold.* TO app@'127.0.0.1'"); err != nil {
		t.Fatal(err)
	}
	res := func(m, peer *mysqltest.MariaDB) *mysql.Resource {
		r, err := mysql.Dial(mysql.Config{Socket: m.Socket, CredentialsFile: cred, Peer: peer.Addr(), CatchupTimeout: 2 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	ra, rb := res(p.A, p.B), res(p.B, p.A)
	v := newVIP(t)
	if err := ra.Promote(ctx, 10); err != nil {
		t.Fatal(err)
	}
	v.Move(p.A.Addr())
	c := &mysqlcheck.Client{Addr: v.ln.Addr().String(), User: "app", Password: "app", Interval: 5 * time.Millisecond, Timeout: time.Second}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	waitAcked(t, c, 50)
	// The switchover as the daemons do it: the owner demotes (VIP down
	// first), the other promotes (peer fence, catch-up) and takes the VIP.
	start := time.Now()
	v.Move("")
	if err := ra.Demote(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := rb.Promote(ctx, 20); err != nil {
		t.Fatal(err)
	}
	v.Move(p.B.Addr())
	t.Logf("switchover took %v (%s)", time.Since(start), rb.Stats().LastCatchup)
	waitAcked(t, c, 100)
	stop()
	<-done

	report := audit(ctx, t, p, c.Writes(), p.B)
	t.Logf("graceful switchover: %s", report)
	if !report.OK() || len(report.Lost) != 0 || report.Acked < 100 {
		t.Fatalf("graceful switchover: %s (lost %v, split %v, diverged %v, errors %v)",
			report, report.Lost, report.SplitBrain, report.Diverged, report.ReplicationErrors)
	}

	// Both writable, one client on each (sequence numbers apart): A still
	// at epoch 10 acknowledges writes after B accepted some under 20.
	if err := p.A.Exec(ctx, "SET GLOBAL read_only = OFF"); err != nil {
		t.Fatal(err)
	}
	ca := &mysqlcheck.Client{Addr: p.A.Addr(), User: "app", Password: "app", Interval: 5 * time.Millisecond, Timeout: time.Second, First: 1_000_000}
	cb := &mysqlcheck.Client{Addr: p.B.Addr(), User: "app", Password: "app", Interval: 5 * time.Millisecond, Timeout: time.Second, First: 500_000}
	sctx, stopBoth := context.WithTimeout(ctx, 300*time.Millisecond)
	var wg sync.WaitGroup
	wg.Go(func() { cb.Run(sctx) })
	time.Sleep(50 * time.Millisecond)
	wg.Go(func() { ca.Run(sctx) })
	wg.Wait()
	stopBoth()
	if err := p.A.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
		t.Fatal(err)
	}
	split := audit(ctx, t, p, append(cb.Writes(), ca.Writes()...), p.B)
	t.Logf("both writable: %s", split)
	if len(split.SplitBrain) == 0 || split.OK() {
		t.Fatalf("the audit missed the split-brain writes: %s", split)
	}
}

// waitAcked waits (at most 20 s: a loaded machine writes slowly) until
// the client has n acknowledged writes.
func waitAcked(t *testing.T, c *mysqlcheck.Client, n int) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		acked := 0
		for _, w := range c.Writes() {
			if w.Acked {
				acked++
			}
		}
		if acked >= n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d acknowledged writes within 20 s, want %d", acked, n)
		}
	}
}

func audit(ctx context.Context, t *testing.T, p *mysqltest.Pair, writes []mysqlcheck.Write, final *mysqltest.MariaDB) mysqlcheck.Report {
	t.Helper()
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	name := "a"
	if final == p.B {
		name = "b"
	}
	rep, err := mysqlcheck.AuditServers(ctx, writes, 0, map[string]*sql.DB{"a": p.A.Root(), "b": p.B.Root()}, name)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
