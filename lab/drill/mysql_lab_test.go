package drill_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
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
	lh, _, parent, name, _, l := upCLILab(t, "m", "--nodes", "2", "--quorum", "raft", "--mysql")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		owners, err := l.Owners(ctx)
		w := writable()
		if err == nil && len(owners) > 0 && len(owners[0]) == 1 && len(w) == 1 && w[0] == owners[0][0] {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("not one owner with the only writable server within 20s: owners %v, writable %v", owners, w)
		}
	}

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
	if w := writable(); len(w) != 1 {
		t.Fatalf("after the drills, writable servers: %v", w)
	}
}
