package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/leasehold/leasehold/storage/mysql"
)

// Programs the MariaDB helper needs (Debian's mariadb-server).
const (
	Mariadbd  = "/usr/sbin/mariadbd"
	InstallDB = "/usr/bin/mariadb-install-db"
)

// Available reports whether MariaDB's server and installer are installed.
func Available() bool {
	for _, p := range []string{Mariadbd, InstallDB} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// RootPassword is the root password of the throwaway servers (root is
// also reachable over TCP from 127.0.0.1, as the peer fence needs).
const RootPassword = "leasehold-test"

// MariaDB is one throwaway mariadbd: its own data directory, socket and
// TCP port on 127.0.0.1, killed by its PID (never the system's mysqld).
type MariaDB struct {
	ServerID int
	Dir      string
	Socket   string
	Port     int
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	db       *sql.DB
}

// Addr is its TCP address.
func (m *MariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

// Options of a pair (seed 002's dual master: server ids 1 and 2,
// binlogs, auto_increment_increment 2 with offsets 1 and 2,
// log_slave_updates; plus GTID replication with a domain per server, the
// MariaDB way of a multi-master pair). Seed 002's slave-skip-errors=all
// is left out on purpose: it hides the divergence a split brain causes.
func serverArgs(dir string, id, port int) []string {
	return []string{"--no-defaults", "--user=root",
		"--datadir=" + filepath.Join(dir, "data"), "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--tmpdir=" + dir, "--log-error=" + filepath.Join(dir, "error.log"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--server-id=" + strconv.Itoa(id), "--gtid-domain-id=" + strconv.Itoa(id),
		"--log-bin=" + filepath.Join(dir, "data", "mysql-bin"), "--log-slave-updates",
		"--binlog-ignore-db=mysql", "--binlog-format=ROW",
		"--auto-increment-increment=2", "--auto-increment-offset=" + strconv.Itoa(id),
		"--read-only=ON", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--performance-schema=OFF", "--skip-slave-start", "--max-connections=50"}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start installs a data directory under dir and starts mariadbd with
// server id id, read_only ON (as a node should come up), root's password
// RootPassword. The caller stops it with Stop.
func Start(ctx context.Context, dir string, id int) (*MariaDB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	install := exec.CommandContext(ctx, InstallDB, "--no-defaults", "--user=root", "--datadir="+filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--tmpdir="+dir, "--innodb-log-file-size=8M")
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &MariaDB{ServerID: id, Dir: dir, Socket: filepath.Join(dir, "mysqld.sock"), Port: port, exited: make(chan struct{})}
	m.cmd = exec.Command(Mariadbd, serverArgs(dir, id, port)...)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	if err := m.waitUp(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	// Root over TCP too (the peer fence connects over TCP); not
	// replicated: each server sets up its own accounts.
	c := gomysql.NewConfig()
	c.Net, c.Addr, c.User = "unix", m.Socket, "root" // no password yet
	conn, _ := gomysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	if err := m.exec(ctx, db, []string{"SET SESSION sql_log_bin = 0",
		"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'",
		"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '" + RootPassword + "'",
		"GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY '" + RootPassword + "'",
		"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'",
		"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'"}); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func (m *MariaDB) waitUp(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", m.Socket)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-m.exited:
			b, _ := os.ReadFile(filepath.Join(m.Dir, "error.log"))
			return fmt.Errorf("mariadbd %d exited at start: %s", m.ServerID, tail(string(b), 2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd %d: no socket after 30s", m.ServerID)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Root returns a connection pool as root over the socket (root's password
// is RootPassword once Start returned; empty before).
func (m *MariaDB) Root() *sql.DB {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		c := gomysql.NewConfig()
		c.Net, c.Addr, c.User, c.Passwd = "unix", m.Socket, "root", RootPassword
		c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 5*time.Second
		conn, _ := gomysql.NewConnector(c)
		m.db = sql.OpenDB(conn)
		m.db.SetMaxOpenConns(4)
	}
	return m.db
}

// Exec runs statements in order on one connection as root.
func (m *MariaDB) Exec(ctx context.Context, stmts ...string) error {
	return m.exec(ctx, m.Root(), stmts)
}

func (m *MariaDB) exec(ctx context.Context, db *sql.DB, stmts []string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mariadb %d: connect: %w", m.ServerID, err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mariadb %d: %s: %w", m.ServerID, q, err)
		}
	}
	return nil
}

// ReplicateFrom makes m a replica of src (GTID, slave_pos) and starts it.
func (m *MariaDB) ReplicateFrom(ctx context.Context, src *MariaDB) error {
	return m.Exec(ctx, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', "+
		"MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", src.Port), "START SLAVE")
}

// Stop kills mariadbd (SIGKILL to its process group, by PID) and waits
// for it.
func (m *MariaDB) Stop() {
	m.mu.Lock()
	if m.db != nil {
		m.db.Close()
		m.db = nil
	}
	m.mu.Unlock()
	if m.cmd != nil && m.cmd.Process != nil {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
}

// Pair is two throwaway servers in dual-master replication.
type Pair struct{ A, B *MariaDB }

// StartPair starts two servers under t's temporary directory (installed in
// parallel), each replicating from the other, stopped when t ends. Without
// MariaDB installed the test is skipped, or fails when LEASEHOLD_STRICT=1.
func StartPair(t testing.TB) *Pair {
	t.Helper()
	if !Available() {
		if os.Getenv("LEASEHOLD_STRICT") == "1" {
			t.Fatalf("LEASEHOLD_STRICT=1 and MariaDB is not installed (Debian package mariadb-server: %s, %s)", Mariadbd, InstallDB)
		}
		t.Skipf("skipping: MariaDB not installed (Debian package mariadb-server; set LEASEHOLD_STRICT=1 to fail instead)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var p Pair
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { p.A, errA = Start(ctx, filepath.Join(dir, "a"), 1) })
	wg.Go(func() { p.B, errB = Start(ctx, filepath.Join(dir, "b"), 2) })
	wg.Wait()
	t.Cleanup(func() {
		for _, m := range []*MariaDB{p.A, p.B} {
			if m != nil {
				m.Stop()
			}
		}
	})
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(p.A.ReplicateFrom(ctx, p.B), p.B.ReplicateFrom(ctx, p.A)); err != nil {
		t.Fatal(err)
	}
	return &p
}

// WaitReplicating waits until m's replication IO and SQL threads both run.
func (m *MariaDB) WaitReplicating(ctx context.Context) error {
	srv, err := mysql.Open(mysql.Endpoint{Net: "unix", Addr: m.Socket}, mysql.Credentials{User: "root", Password: RootPassword}, 5*time.Second)
	if err != nil {
		return err
	}
	defer srv.Close()
	for {
		r, err := srv.Replica(ctx)
		if err == nil && r.IORunning == "Yes" && r.SQLRunning == "Yes" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mariadb %d: replication not running (%+v, %v): %w", m.ServerID, r, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Sync waits until each server of the pair has applied what the other
// wrote (its gtid_binlog_pos, the GTIDs the other originated).
func (p *Pair) Sync(ctx context.Context) error {
	for _, pair := range [][2]*MariaDB{{p.A, p.B}, {p.B, p.A}} {
		from, to := pair[0], pair[1]
		var pos string
		if err := from.Root().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
			return fmt.Errorf("mariadb %d: gtid_binlog_pos: %w", from.ServerID, err)
		}
		target := mysql.WaitTarget(pos, uint32(to.ServerID))
		if target == "" {
			continue
		}
		var res int
		if err := to.Root().QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 10)", target).Scan(&res); err != nil || res != 0 {
			return fmt.Errorf("mariadb %d did not apply %s of server %d within 10s: %v (%d)", to.ServerID, target, from.ServerID, err, res)
		}
	}
	return nil
}
