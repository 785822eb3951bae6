package daemon_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// mysqlSection is an instance's mysql section with a credentials file of
// its own (mode 0600).
func mysqlSection(t *testing.T) string {
	t.Helper()
	cred := filepath.Join(t.TempDir(), "mysql.cnf")
	if err := os.WriteFile(cred, []byte("[client]\nuser = root\npassword = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "mysql: {socket: /run/mysqld/mysqld.sock, credentials_file: " + cred + ", check: {interval: 200ms, fall: 2}}"
}

// Two daemons with a mysql section on fake servers: n1's server was left
// writable (an earlier run was killed) and is made read-only before n1
// joins VRRP; the owner's server is writable, the backup's read-only; when
// the owner is cut off (L2 and quorum), it goes read-only and the other
// writable. Never two writable servers (sampled every 10 ms).
func TestMySQLFollowsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		f1, f2 := w.MySQLServer("n1"), w.MySQLServer("n2")
		f1.RO = false
		check := func(cond func() bool) func() bool {
			return func() bool {
				if !f1.ReadOnly() && !f2.ReadOnly() {
					t.Fatal("both servers writable")
				}
				return cond()
			}
		}
		section := mysqlSection(t)
		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, section)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100, section)
		waitFor(t, 10*time.Second, "n1 owns, its server writable", check(func() bool {
			return answering(w, "n1")() && !f1.ReadOnly() && f2.ReadOnly()
		}))
		calls := f1.Calls()
		if ro, rw := slices.Index(calls, "SetReadOnly true"), slices.Index(calls, "SetReadOnly false"); ro < 0 || ro > 2 || rw < ro {
			t.Fatalf("n1 did not make its leftover writable server read-only first: %q", calls[:min(len(calls), 6)])
		}
		if i := slices.Index(calls, "SetReadOnly false"); i < 0 || !strings.HasPrefix(calls[i-1], "RecordEpoch ") {
			t.Fatalf("n1 made its server writable without recording the epoch first: %q", calls)
		}
		st := n1.d.Status().MySQL
		if len(st) != 1 || st[0].Group != "VI_1" || st[0].Instance != "VI_1" || st[0].Writable == 0 || st[0].Corrected != 1 {
			t.Fatalf("n1 status mysql: %+v", st)
		}
		waitFor(t, 5*time.Second, "the health check ran", func() bool { return n2.d.Status().MySQL[0].LastCheck != "" })

		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		waitFor(t, 10*time.Second, "n2 takes over, its server writable", check(func() bool {
			return answering(w, "n2")() && !f2.ReadOnly()
		}))
		if !f1.ReadOnly() {
			t.Fatal("n1's server still writable after losing the lease")
		}
		w.Quorum.Heal("n1")
		w.Seg.Rejoin("n1")
		n2.shutdown(t)
		n1.shutdown(t)
		for name, f := range map[string]*mysqltest.Fake{"n1": f1, "n2": f2} {
			if !f.ReadOnly() {
				t.Fatalf("%s's server writable after its shutdown", name)
			}
		}
	})
}

// A failing health check (the SQL thread stopped) with weight 0 puts the
// group in FAULT: the owner hands over.
func TestMySQLHealthFaultHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		f1, f2 := w.MySQLServer("n1"), w.MySQLServer("n2")
		section := mysqlSection(t)
		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, section)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100, section)
		waitFor(t, 10*time.Second, "n1 owns", func() bool { return answering(w, "n1")() && !f1.ReadOnly() })
		f1.SetReplica(mysqltest.Broken("Duplicate entry '7' for key 'PRIMARY'"))
		waitFor(t, 10*time.Second, "n2 owns after n1's check fails", func() bool { return answering(w, "n2")() && !f2.ReadOnly() && f1.ReadOnly() })
		if st := n1.d.Status().MySQL[0]; st.Healthy || !strings.Contains(st.LastCheck, "Duplicate entry") {
			t.Fatalf("n1 status mysql: %+v", st)
		}
		n2.shutdown(t)
		n1.shutdown(t)
	})
}
