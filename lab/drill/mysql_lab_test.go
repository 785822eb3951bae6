package drill_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// TestMySQLLab: `lab up --mysql` runs a MariaDB dual-master pair in the
// nodes' namespaces with a mysql section on group 1. Exactly one server
// is writable, the owner's. A client in the client namespace writes
// through the VIP every 10 ms while the owner's leasehold is killed with
// SIGKILL (its mysqld keeps running, writable, as under keepalived):
// the new owner fences it over TCP and takes the writes. The audit: no
// split-brain write, no divergence, no replication error, nothing
// acknowledged lost (the old master's mysqld is alive, so the new one
// catches up), and the write outage.
func TestMySQLLab(t *testing.T) {
	if !mysqltest.Available() {
		mysqltest.StartPair(t) // skips, or fails under LEASEHOLD_STRICT=1, saying why
	}
	_, _, _, _, _, l := upCLILab(t, "m", "--nodes", "2", "--quorum", "raft", "--mysql")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := l.Meta().Nodes
	roots := map[string]*sql.DB{}
	for _, n := range nodes {
		db, err := l.MySQLRoot(n)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		roots[n] = db
	}
	writable := func() (w []string) {
		for _, n := range nodes {
			var ro int
			if err := roots[n].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
				w = append(w, n)
			}
		}
		return w
	}
	owner := func() string {
		owners, err := l.Owners(ctx)
		if err != nil || len(owners) == 0 || len(owners[0]) != 1 {
			return ""
		}
		return owners[0][0]
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within 20s (owner %q, writable %v)", what, owner(), writable())
			}
		}
	}
	var first string
	waitUntil("one owner, its server the only writable one", func() bool {
		first = owner()
		w := writable()
		return first != "" && len(w) == 1 && w[0] == first
	})

	c := &mysqlcheck.Client{Addr: fmt.Sprintf("%s:%d", l.VIP(), labctl.MySQLPort), User: labctl.AppUser, Password: labctl.AppPassword,
		Interval: 10 * time.Millisecond, Timeout: time.Second}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Netlab().Host(netlab.ClientName).Do(func() error { return c.Run(cctx) }) }()
	time.Sleep(time.Second)
	if err := l.Signal(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var next string
	waitUntil("the other node owns, its server writable, the old one read-only", func() bool {
		next = owner()
		w := writable()
		return next != "" && next != first && len(w) == 1 && w[0] == next
	})
	t.Logf("kill -9 of %s's leasehold: %s owns and is writable after %v", first, next, time.Since(killed).Round(time.Millisecond))
	nextID := uint32(slices.Index(nodes, next) + 1) // lab/labctl: node i runs server id i+1
	waitUntil("the client writes to the new owner's server", func() bool {
		n := 0
		for _, w := range c.Writes() {
			if w.Acked && w.ServerID == nextID {
				n++
			}
		}
		return n >= 20
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	rows := map[uint32][]mysqlcheck.Row{}
	var repl []mysqlcheck.Replication
	var final uint32
	time.Sleep(500 * time.Millisecond) // let replication settle
	for _, n := range nodes {
		id, rs, r, err := mysqlcheck.Collect(ctx, roots[n])
		if err != nil {
			t.Fatal(err)
		}
		rows[id], repl = rs, append(repl, r)
		if n == next {
			final = id
		}
	}
	errs := map[string]int{}
	for _, w := range c.Writes() {
		if !w.Acked {
			errs[w.Err]++
		}
	}
	t.Logf("failed writes by error: %v", errs)
	rep := mysqlcheck.Audit(c.Writes(), rows, final, repl)
	t.Logf("kill -9 drill: %s", rep)
	if !rep.OK() || len(rep.Lost) != 0 || rep.Acked < 50 {
		t.Fatalf("kill -9 drill: %s (lost %v, split-brain %v, diverged %v, errors %v, unrecovered %v)",
			rep, rep.Lost, rep.SplitBrain, rep.Diverged, rep.ReplicationErrors, rep.Unrecovered)
	}
}
