package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/storage/mysql/mysqltest"
)

// Tests against a real MariaDB 10.11 dual-master pair (Debian's
// mariadb-server), one pair for the whole test: each subtest starts from
// both servers read-only and uses epochs above the previous ones.

type env struct {
	t     *testing.T
	p     *mysqltest.Pair
	cred  string
	epoch uint64
}

func (e *env) nextEpoch() uint64 { e.epoch += 10; return e.epoch }

// resource returns a Resource for m with peer (nil: no peer fence).
func (e *env) resource(m, peer *mysqltest.MariaDB, mod func(*mysql.Config)) *mysql.Resource {
	e.t.Helper()
	cfg := mysql.Config{Socket: m.Socket, CredentialsFile: e.cred, CatchupTimeout: 4 * time.Second, StepTimeout: 2 * time.Second}
	if peer != nil {
		cfg.Peer = peer.Addr()
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := mysql.Dial(cfg, slog.New(slog.NewTextHandler(testWriter{e.t}, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// client connects to m over TCP as user (password = user).
func client(t *testing.T, m *mysqltest.MariaDB, user string) *sql.DB {
	t.Helper()
	c := gomysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd = "tcp", m.Addr(), user, user
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 5*time.Second, 2*time.Second
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func insert(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, v string) error {
	_, err := q.ExecContext(ctx, "INSERT INTO t.w (v) VALUES (?)", v)
	return err
}

func readOnly(t *testing.T, m *mysqltest.MariaDB) bool {
	t.Helper()
	var ro int
	if err := m.Root().QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
		t.Fatal(err)
	}
	return ro == 1
}

func count(t *testing.T, m *mysqltest.MariaDB, v string) int {
	t.Helper()
	var n int
	if err := m.Root().QueryRow("SELECT COUNT(*) FROM t.w WHERE v = ?", v).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// synced waits until both servers have applied each other's binlog.
func synced(t *testing.T, p *mysqltest.Pair) {
	t.Helper()
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMariaDB(t *testing.T) {
	p := mysqltest.StartPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cred := filepath.Join(t.TempDir(), "mysql.cnf")
	if err := os.WriteFile(cred, []byte("[client]\nuser = root\npassword = "+mysqltest.RootPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, p: p, cred: cred}
	// Accounts and the table (root writes through read_only: READ_ONLY
	// ADMIN). Replicated to B.
	if err := p.A.Exec(ctx, "CREATE DATABASE t", "CREATE TABLE t.w (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))",
		"CREATE USER app@'127.0.0.1' IDENTIFIED BY 'app'", "GRANT SELECT, INSERT ON t.* TO app@'127.0.0.1'",
		"CREATE USER admin@'127.0.0.1' IDENTIFIED BY 'admin'", "GRANT ALL ON *.* TO admin@'127.0.0.1'"); err != nil {
		t.Fatal(err)
	}
	synced(t, p)
	for _, m := range []*mysqltest.MariaDB{p.A, p.B} {
		if !readOnly(t, m) {
			t.Fatalf("server %d starts writable", m.ServerID)
		}
	}

	t.Run("PromoteDemote", func(t *testing.T) {
		e.t = t
		ra := e.resource(p.A, nil, nil)
		app := client(t, p.A, "app")
		if err := insert(ctx, app, "before"); err == nil {
			t.Fatal("a client wrote to a read-only server")
		}
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if readOnly(t, p.A) {
			t.Fatal("read_only still on after Promote")
		}
		held, err := app.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := insert(ctx, held, "promoted"); err != nil {
			t.Fatalf("write after promote: %v", err)
		}
		var rec uint64
		if err := p.A.Root().QueryRow("SELECT epoch FROM leasehold.epoch WHERE server_id = 1").Scan(&rec); err != nil || rec != ep {
			t.Fatalf("epoch table: %d, %v; want %d", rec, err, ep)
		}
		if err := ra.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if !readOnly(t, p.A) {
			t.Fatal("read_only off after Demote")
		}
		if err := insert(ctx, held, "after-demote-held"); err == nil {
			t.Fatal("the connection open across the demotion still wrote")
		}
		err = insert(ctx, app, "after-demote-new")
		if me := new(gomysql.MySQLError); !errors.As(err, &me) || me.Number != 1290 {
			t.Fatalf("a new client's write after demote: %v, want error 1290 (read-only)", err)
		}
		if n := count(t, p.A, "after-demote-held") + count(t, p.A, "after-demote-new"); n != 0 {
			t.Fatalf("%d writes after demote", n)
		}
		if st := ra.Stats(); st.Killed == 0 {
			t.Fatalf("no client connection killed: %+v", st)
		}
	})

	t.Run("DemoteDuringLongWrite", func(t *testing.T) {
		// A write statement still running (3 s) when the demotion starts:
		// the demotion must finish within its budget (1 s here), the
		// statement must not commit.
		e.t = t
		ra := e.resource(p.A, nil, nil)
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		app := client(t, p.A, "app")
		if err := insert(ctx, app, "long"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := app.ExecContext(ctx, "INSERT INTO t.w (v) SELECT CONCAT('long-', SLEEP(3)) FROM t.w WHERE v = 'long'")
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		start := time.Now()
		err := ra.Demote(dctx, ep)
		cancel()
		if err != nil {
			t.Fatalf("demote beside a long write (%v): %v", time.Since(start), err)
		}
		t.Logf("demoted in %v beside a running write", time.Since(start))
		if werr := <-done; werr == nil {
			t.Fatal("the long write committed across the demotion")
		}
		if !readOnly(t, p.A) || count(t, p.A, "long-0") != 0 {
			t.Fatal("the long write's row is there, or the server is writable")
		}
	})

	t.Run("LeastPrivilegeAccount", func(t *testing.T) {
		// The daemon's account as docs/operating.md lists it, not root.
		e.t = t
		if err := p.A.Exec(ctx, "CREATE USER lh@localhost IDENTIFIED BY 'lh'",
			"GRANT READ_ONLY ADMIN, SUPER, PROCESS, CONNECTION ADMIN, SLAVE MONITOR ON *.* TO lh@localhost",
			"GRANT SELECT, INSERT, UPDATE, CREATE ON leasehold.* TO lh@localhost"); err != nil {
			t.Fatal(err)
		}
		cred := filepath.Join(t.TempDir(), "lh.cnf")
		if err := os.WriteFile(cred, []byte("[client]\nuser = lh\npassword = lh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ra := e.resource(p.A, nil, func(c *mysql.Config) { c.CredentialsFile = cred })
		held, err := client(t, p.A, "app").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := ra.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ra.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if !readOnly(t, p.A) || ra.Stats().Killed == 0 {
			t.Fatalf("demote with the least-privilege account: read-only %v, %+v", readOnly(t, p.A), ra.Stats())
		}
		if err := insert(ctx, held, "lh-after-demote"); err == nil {
			t.Fatal("a client survived the least-privilege account's demotion")
		}
	})

	t.Run("ReadOnlyAdmin", func(t *testing.T) {
		// MariaDB 10.11: READ_ONLY ADMIN (granted by ALL, held by root)
		// writes through read_only. Demote kills its connections; a new
		// one can write until the watch (Check) kills it.
		e.t = t
		ra := e.resource(p.A, nil, nil)
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		admin := client(t, p.A, "admin")
		held, err := admin.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := insert(ctx, held, "admin-promoted"); err != nil {
			t.Fatal(err)
		}
		if err := ra.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := insert(ctx, held, "admin-after-demote"); err == nil {
			t.Fatal("a READ_ONLY ADMIN connection open across the demotion still wrote")
		}
		fresh, err := admin.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		if err := insert(ctx, fresh, "admin-bypass"); err != nil {
			t.Fatalf("expected READ_ONLY ADMIN to bypass read_only on MariaDB 10.11 (the case the watch handles): %v", err)
		}
		before := ra.Stats().BypassKilled
		if err := ra.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := insert(ctx, fresh, "admin-after-watch"); err == nil {
			t.Fatal("the watch left a READ_ONLY ADMIN connection on a read-only server")
		}
		if got := ra.Stats().BypassKilled; got <= before {
			t.Fatalf("bypass kills %d, want > %d", got, before)
		}
		if n := count(t, p.A, "admin-after-demote") + count(t, p.A, "admin-after-watch"); n != 0 {
			t.Fatalf("%d writes after demote by killed connections", n)
		}
	})

	t.Run("StaleEpoch", func(t *testing.T) {
		e.t = t
		ra, rb := e.resource(p.A, nil, nil), e.resource(p.B, nil, nil)
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := ra.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		synced(t, p)
		// B learned A's epoch by replication: an older grant is refused.
		if err := rb.Promote(ctx, ep-1); !errors.Is(err, mysql.ErrRefused) || !strings.Contains(err.Error(), "stale epoch") {
			t.Fatalf("B promoted for a stale epoch: %v", err)
		}
		if err := rb.Promote(ctx, ep); !errors.Is(err, mysql.ErrRefused) {
			t.Fatalf("B promoted for the epoch A recorded: %v", err)
		}
		if !readOnly(t, p.B) {
			t.Fatal("B writable after a refused promotion")
		}
		if err := rb.Promote(ctx, ep+1); err != nil {
			t.Fatal(err)
		}
		if err := rb.Demote(ctx, ep+1); err != nil {
			t.Fatal(err)
		}
		synced(t, p)
		if err := ra.Promote(ctx, ep); !errors.Is(err, mysql.ErrRefused) {
			t.Fatalf("A promoted again for its old epoch after B's newer one: %v", err)
		}
		if n, last := ra.Stats().Refusals, ra.Stats().LastRefusal; n != 1 || !strings.Contains(last, "stale") {
			t.Fatalf("refusals %d %q", n, last)
		}
		e.epoch++
	})

	t.Run("Catchup", func(t *testing.T) {
		e.t = t
		// B applies A's writes 1-2 s late (MASTER_DELAY 2: event timestamps are whole seconds).
		if err := p.B.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 2", "START SLAVE"); err != nil {
			t.Fatal(err)
		}
		if err := p.B.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := p.B.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"); err != nil {
				t.Fatal(err)
			}
			if err := p.B.WaitReplicating(ctx); err != nil {
				t.Fatal(err)
			}
		}()
		ra := e.resource(p.A, nil, nil)
		writeOnA := func(v string) {
			ep := e.nextEpoch()
			if err := ra.Promote(ctx, ep); err != nil {
				t.Fatal(err)
			}
			if err := insert(ctx, client(t, p.A, "app"), v); err != nil {
				t.Fatal(err)
			}
			if err := ra.Demote(ctx, ep); err != nil {
				t.Fatal(err)
			}
		}
		// refuse: 200 ms is not enough.
		writeOnA("catchup-1")
		rb := e.resource(p.B, p.A, func(c *mysql.Config) { c.CatchupTimeout = 200 * time.Millisecond })
		if err := rb.Promote(ctx, e.nextEpoch()); !errors.Is(err, mysql.ErrRefused) || !strings.Contains(err.Error(), "not applied") {
			t.Fatalf("promotion with the relay log unapplied: %v", err)
		}
		if !readOnly(t, p.B) {
			t.Fatal("B writable after a refused catch-up")
		}
		synced(t, p)
		// promote_anyway: promoted, and counted.
		writeOnA("catchup-2")
		rb = e.resource(p.B, p.A, func(c *mysql.Config) {
			c.CatchupTimeout, c.CatchupPolicy = 200*time.Millisecond, mysql.PromoteAnyway
		})
		ep := e.nextEpoch()
		if err := rb.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if st := rb.Stats(); st.PromotedAnyway != 1 || !strings.Contains(st.LastCatchup, "anyway") {
			t.Fatalf("promote_anyway not reported: %+v", st)
		}
		if err := rb.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		synced(t, p)
		// 3 s is enough: the promotion waits for A's write.
		writeOnA("catchup-3")
		rb = e.resource(p.B, p.A, nil)
		start := time.Now()
		ep = e.nextEpoch()
		if err := rb.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if n := count(t, p.B, "catchup-3"); n != 1 {
			t.Fatalf("B promoted with A's last write applied %d times", n)
		}
		t.Logf("promotion waited %v for the delayed relay log: %s", time.Since(start), rb.Stats().LastCatchup)
		if err := rb.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("StartFencing", func(t *testing.T) {
		e.t = t
		synced(t, p)
		if err := p.A.Exec(ctx, "SET GLOBAL read_only = OFF"); err != nil {
			t.Fatal(err)
		}
		held, err := client(t, p.A, "app").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := insert(ctx, held, "left-writable"); err != nil {
			t.Fatal(err)
		}
		ra := e.resource(p.A, nil, nil)
		if err := ra.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if !readOnly(t, p.A) {
			t.Fatal("Start left the server writable")
		}
		if err := insert(ctx, held, "after-start"); err == nil {
			t.Fatal("a client of the leftover writable server still writes after Start")
		}
		if st := ra.Stats(); st.Corrected != 1 {
			t.Fatalf("corrections %d", st.Corrected)
		}
		// The watch does the same for a server that turns writable later
		// (restarted without read_only in my.cnf).
		if err := p.A.Exec(ctx, "SET GLOBAL read_only = OFF"); err != nil {
			t.Fatal(err)
		}
		if err := ra.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if !readOnly(t, p.A) || ra.Stats().Corrected != 2 {
			t.Fatalf("the watch left the server writable (corrections %d)", ra.Stats().Corrected)
		}
	})

	// The owner's server made read-only by someone else while the lease
	// is held (an operator's SET GLOBAL read_only = ON): the watch makes
	// it writable again for the current epoch, counted; once the epoch
	// table shows a newer epoch (the peer promoted), it does not, and the
	// check fails instead (the group gives the lease up).
	t.Run("OwnerMadeReadOnly", func(t *testing.T) {
		e.t = t
		synced(t, p)
		ra := e.resource(p.A, nil, nil)
		ep := e.nextEpoch()
		if err := ra.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := p.A.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
			t.Fatal(err)
		}
		app := client(t, p.A, "app")
		if err := insert(ctx, app, "while-read-only"); err == nil {
			t.Fatal("the app wrote to a read-only server")
		}
		if err := ra.Check(ctx); err != nil {
			t.Fatalf("check after re-asserting: %v", err)
		}
		st := ra.Stats()
		if readOnly(t, p.A) || st.Reasserted != 1 || st.Promoted != ep {
			t.Fatalf("the owner's server was left read-only: reasserted %d, promoted %d (%s)", st.Reasserted, st.Promoted, st.LastReassert)
		}
		if err := insert(ctx, app, "reasserted"); err != nil {
			t.Fatalf("the app cannot write after the re-assertion: %v", err)
		}
		t.Logf("re-asserted: %s", st.LastReassert)
		// The peer was promoted under a newer epoch while A's demotion
		// did not happen (its row replicates here) and A was made
		// read-only: no re-assertion, the check fails.
		rb := e.resource(p.B, nil, nil)
		newer := e.nextEpoch()
		if err := rb.Promote(ctx, newer); err != nil {
			t.Fatal(err)
		}
		if err := p.A.Exec(ctx, "SET GLOBAL read_only = ON"); err != nil {
			t.Fatal(err)
		}
		synced(t, p)
		err := ra.Check(ctx)
		if err == nil || !readOnly(t, p.A) || ra.Stats().Reasserted != 1 {
			t.Fatalf("re-asserted under a stale epoch: check %v, read-only %v, reasserted %d", err, readOnly(t, p.A), ra.Stats().Reasserted)
		}
		t.Logf("stale: check %v", err)
		if err := ra.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := rb.Demote(ctx, newer); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PeerFence", func(t *testing.T) {
		e.t = t
		synced(t, p)
		// A is writable (its daemon was killed -9 while owner).
		ra := e.resource(p.A, nil, nil)
		old := e.nextEpoch()
		if err := ra.Promote(ctx, old); err != nil {
			t.Fatal(err)
		}
		held, err := client(t, p.A, "app").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := insert(ctx, held, "old-master"); err != nil {
			t.Fatal(err)
		}
		rb := e.resource(p.B, p.A, nil)
		ep := e.nextEpoch()
		if err := rb.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if !readOnly(t, p.A) {
			t.Fatal("the peer fence left A writable")
		}
		if err := insert(ctx, held, "old-master-after-fence"); err == nil {
			t.Fatal("A's client still writes after the peer fence")
		}
		if n := count(t, p.B, "old-master"); n != 1 {
			t.Fatalf("B promoted without A's last write (%d)", n)
		}
		if st := rb.Stats(); !strings.Contains(st.LastPeerFence, "read-only") {
			t.Fatalf("peer fence: %q", st.LastPeerFence)
		}
		if err := rb.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		// A peer that is down: the promotion goes on, the failure is
		// reported, within the peer timeout.
		rb = e.resource(p.B, nil, func(c *mysql.Config) { c.Peer, c.PeerTimeout = "127.0.0.1:1", 500*time.Millisecond })
		start := time.Now()
		ep = e.nextEpoch()
		if err := rb.Promote(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("promotion with an unreachable peer took %v", took)
		}
		if st := rb.Stats(); !strings.Contains(st.LastPeerFence, "failed") {
			t.Fatalf("peer fence: %q", st.LastPeerFence)
		}
		if err := rb.Demote(ctx, ep); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("HealthCheck", func(t *testing.T) {
		e.t = t
		ra := e.resource(p.A, nil, nil)
		if err := ra.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.A.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
		err := ra.Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "SQL thread") {
			t.Fatalf("check with the SQL thread stopped: %v", err)
		}
		if err := p.A.Exec(ctx, "START SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
		if err := p.A.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ra.Check(ctx); err != nil {
			t.Fatal(err)
		}
		down := e.resource(p.A, nil, func(c *mysql.Config) { c.Socket = filepath.Join(t.TempDir(), "none.sock") })
		if err := down.Check(ctx); err == nil {
			t.Fatal("check of a server that is not there passed")
		}
		// Nothing runs there: nothing to demote.
		if err := down.Demote(ctx, e.nextEpoch()); err != nil {
			t.Fatalf("demote of a server that is not running: %v", err)
		}
	})

	// No replication error on either side after all of it.
	synced(t, p)
	for _, m := range []*mysqltest.MariaDB{p.A, p.B} {
		rs, err := mysql.Open(mysql.Endpoint{Net: "unix", Addr: m.Socket}, mysql.Credentials{User: "root", Password: mysqltest.RootPassword}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := rs.Replica(ctx)
		rs.Close()
		if err != nil || rep.SQLRunning != "Yes" || rep.LastError != "" {
			t.Fatalf("server %d replication after the test: %+v %v", m.ServerID, rep, err)
		}
	}
}
