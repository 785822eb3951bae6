package drill_test

import (
	"context"
	"database/sql"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// TestMySQLLab: `lab up --mysql` runs a MariaDB dual-master pair in the
// nodes' namespaces with a mysql section on group 1; exactly one server
// is writable, the owner's. `drill kill9` (the owner's leasehold killed,
// its mysqld left running and writable, as under keepalived) and `drill
// graceful` run with the write checker writing through the VIP from the
// client's namespace; their verdicts include its audit: no split-brain
// write, no divergence, no replication error, nothing acknowledged lost
// (the old master's mysqld is alive, so the new one catches up).
func TestMySQLLab(t *testing.T) {
	mysqltest.Require(t)
	lh, _, parent, name, dir, l := upCLILab(t, "m", "--nodes", "2", "--quorum", "raft", "--mysql")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := l.Meta().Nodes
	dbs := map[string]*sql.DB{}
	for _, n := range nodes {
		db, err := l.MySQLAuditor(n)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[n] = db
	}
	writable := func() (w []string) {
		for _, n := range nodes {
			var ro int
			if err := dbs[n].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
				w = append(w, n)
			}
		}
		return w
	}
	// oneWriter waits until group 1 has one owner (other than not) whose
	// server
	// is the only writable one.
	oneWriter := func(not string) string {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			owners, err := l.Owners(ctx)
			w := writable()
			if err == nil && len(owners) > 0 && len(owners[0]) == 1 && owners[0][0] != not && len(w) == 1 && w[0] == owners[0][0] {
				return w[0]
			}
			if time.Now().After(end) {
				t.Fatalf("not one owner (other than %q) with the only writable server within 20s: owners %v, writable %v", not, owners, w)
			}
		}
	}
	oneWriter("")

	for _, sc := range []string{"kill9", "graceful"} {
		out, err := lh("drill", sc, "--dir", parent, "--lab", name, "--json")
		if err != nil {
			t.Errorf("drill %s: %v", sc, err)
		}
		rep, perr := drill.ReadJSON([]byte(out))
		if perr != nil || len(rep.Results) != 1 {
			t.Fatalf("drill %s: no result (%v):\n%s", sc, perr, out)
		}
		r := rep.Results[0]
		m := r.MySQL
		if m == nil {
			t.Fatalf("drill %s: no MySQL write audit", sc)
		}
		t.Logf("%s: %s; mysql writes %d, acked %d, lost %d, split-brain %d, diverged %d, replication errors %v, outages %d (max %v) %s",
			sc, r.Verdict, m.Attempted, m.Acked, len(m.Lost), len(m.SplitBrain), len(m.Diverged), m.ReplicationErrors, m.Outages,
			time.Duration(m.MaxOutageUS)*time.Microsecond, m.Error)
		if !r.Pass || m.Acked < 100 || len(m.SplitBrain)+len(m.Diverged)+len(m.ReplicationErrors)+len(m.Lost) != 0 || m.Error != "" {
			t.Errorf("drill %s: %s %v", sc, r.Verdict, r.Reasons)
		}
	}

	// The drills restarted daemons: read the lab's record again.
	l.Close()
	var err error
	if l, err = labctl.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// mysqld crash: the owner's mariadbd is killed -9; its health check
	// (weight 0) puts the group in FAULT, the other node takes over and
	// its server becomes the writable one. The crashed server comes back
	// read-only and replicating, not writable.
	old := oneWriter("")
	c := &mysqlcheck.Client{Addr: net.JoinHostPort(l.VIP().String(), strconv.Itoa(labctl.MySQLPort)), User: labctl.AppUser,
		Password: labctl.AppPassword, Interval: 10 * time.Millisecond, Timeout: 250 * time.Millisecond, First: uint64(time.Now().UnixMicro())}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Netlab().Host(netlab.ClientName).Do(func() error { return c.Run(cctx) }) }()
	time.Sleep(500 * time.Millisecond)
	if err := l.KillMySQL(old); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	next := oneWriter(old)
	t.Logf("mysqld crash on %s: %s owns, its server writable, after %v", old, next, time.Since(crashed).Round(time.Millisecond))
	if err := l.StartMySQL(ctx, old); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if w := writable(); len(w) == 1 && w[0] == next {
			if n := acked(c.Writes(), uint32(slices.Index(nodes, next)+1)); n >= 20 {
				break
			}
		}
		if time.Now().After(end) {
			t.Fatalf("after %s's mysqld came back: writable %v, client acks on %s: %d", old, writable(), next, acked(c.Writes(), uint32(slices.Index(nodes, next)+1)))
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Healed: both replication threads of both servers run again.
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok := true
		for _, n := range nodes {
			r, err := mysql.ReplicaOf(ctx, dbs[n])
			ok = ok && err == nil && r.IORunning == "Yes" && r.SQLRunning == "Yes"
		}
		if ok {
			break
		}
		if time.Now().After(end) {
			t.Fatal("replication not running both ways within 20s of the restart")
		}
	}
	if err := mariadb.Sync(ctx, dbs[nodes[0]], dbs[nodes[1]], 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rep, err := mysqlcheck.AuditServers(ctx, c.Writes(), c.First, dbs, next)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mysqld crash: %s (lost %v, diverged %v)", rep, rep.Lost, rep.Diverged)
	// Lost and diverged writes are possible here (asynchronous
	// replication; a killed mysqld): reported, not judged.
	if len(rep.SplitBrain)+len(rep.ReplicationErrors) != 0 || rep.Unrecovered {
		t.Fatalf("mysqld crash: %s (split-brain %v, errors %v)", rep, rep.SplitBrain, rep.ReplicationErrors)
	}
}

func acked(ws []mysqlcheck.Write, server uint32) (n int) {
	for _, w := range ws {
		if w.Acked && w.ServerID == server {
			n++
		}
	}
	return n
}
