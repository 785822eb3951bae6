package drill_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// TestMySQLLab: `lab up --mysql` runs a MariaDB dual-master pair in the
// nodes' namespaces with a mysql section on group 1; exactly one server
// is writable, the owner's. `drill kill9` (the owner's leasehold killed,
// its mysqld left running and writable, as under keepalived), `drill
// graceful` and `drill mysqld-crash` (the owner's mariadbd killed -9: its
// health check fails the group, the other node takes over; the crashed
// server comes back read-only) run with the write checker writing through
// the VIP from the client's namespace; their verdicts include its audit:
// no split-brain write, no divergence, no replication error after heal,
// nothing acknowledged lost once the old master is back. Then the same
// crash on a semi-synchronous pair (lab up --semi-sync): the new master
// held every acknowledged write while the old one was gone.
func TestMySQLLab(t *testing.T) {
	mysqltest.Require(t)
	mysql.QuietDriverLog() // the audit pools below outlive the servers
	lh, _, parent, name, _, l := upCLILab(t, "m", "--nodes", "2", "--quorum", "raft", "--mysql")
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
	var writable []string
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		writable = writable[:0]
		for _, n := range nodes {
			var ro int
			if err := dbs[n].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
				writable = append(writable, n)
			}
		}
		owners, err := l.Owners(ctx)
		if err == nil && len(owners) > 0 && len(owners[0]) == 1 && len(writable) == 1 && writable[0] == owners[0][0] {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("not one owner with the only writable server within 20s: owners %v, writable %v", owners, writable)
		}
	}
	mysqlDrills(t, lh, parent, name, "kill9", "graceful", "mysqld-crash")

	lh, _, parent, name, _, l = upCLILab(t, "s", "--nodes", "2", "--quorum", "raft", "--mysql", "--semi-sync")
	// The owner's status reports semi-sync on (commits wait for the peer).
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := lh("status", "--socket", l.StatusSocket(nodes[0]), "--json")
		var doc daemon.StatusDoc
		if err == nil {
			err = json.Unmarshal([]byte(out), &doc)
		}
		if err == nil && len(doc.MySQL) == 1 && doc.MySQL[0].SemiSync == "on" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%s's status does not report semi-sync on within 10 s: %v %+v", nodes[0], err, doc.MySQL)
		}
	}
	mysqlDrills(t, lh, parent, name, "mysqld-crash")
}

// mysqlDrills runs each scenario on the lab with --json and requires a
// PASS with the write checker's audit clean.
func mysqlDrills(t *testing.T, lh func(...string) (string, error), parent, name string, scenarios ...string) {
	t.Helper()
	for _, sc := range scenarios {
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
		t.Logf("%s (semi-sync %v): %s; mysql writes %d, acked %d, lost %d, lost at takeover %d (measured %v), split-brain %d, diverged %d, "+
			"replication errors %v, outages %d (max %v) %s; notes %v",
			sc, m.SemiSync, r.Verdict, m.Attempted, m.Acked, len(m.Lost), len(m.LostAtTakeover), m.Snapshot, len(m.SplitBrain), len(m.Diverged),
			m.ReplicationErrors, m.Outages, time.Duration(m.MaxOutageUS)*time.Microsecond, m.Error, r.Notes)
		if !r.Pass || m.Acked < 100 || len(m.SplitBrain)+len(m.Diverged)+len(m.ReplicationErrors)+len(m.Lost) != 0 || m.Error != "" {
			t.Errorf("drill %s: %s %v", sc, r.Verdict, r.Reasons)
		}
		if sc == "mysqld-crash" && (!m.Snapshot || m.SemiSync && len(m.LostAtTakeover) != 0) {
			t.Errorf("drill %s: new master's snapshot %v, %d acknowledged writes missing on it (semi-sync %v)", sc, m.Snapshot, len(m.LostAtTakeover), m.SemiSync)
		}
	}
}
