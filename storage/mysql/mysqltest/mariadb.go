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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/storage/mysql"
)

// Available reports whether MariaDB's server and installer are installed.
func Available() bool { return mariadb.Available() }

// RootPassword is the root password of the throwaway servers.
const RootPassword = mariadb.RootPassword

// MariaDB is one throwaway mariadbd (lab/mariadb's recipe): its own data
// directory, socket and TCP port on 127.0.0.1, killed by its PID (never
// the system's mysqld).
type MariaDB struct {
	ServerID int
	Dir      string
	Socket   string
	Port     int
	srv      mariadb.Server
	cmd      *exec.Cmd
	exited   chan struct{}
	mu       sync.Mutex
	db       *sql.DB
}

// Addr is its TCP address.
func (m *MariaDB) Addr() string { return m.srv.Addr() }

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
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := mariadb.Server{Dir: dir, ID: id, Bind: "127.0.0.1", Port: port}
	if err := srv.Install(ctx); err != nil {
		return nil, err
	}
	m := &MariaDB{ServerID: id, Dir: dir, Socket: srv.Socket(), Port: port, srv: srv, exited: make(chan struct{})}
	m.cmd = exec.Command(mariadb.Mariadbd, srv.Args()...)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.WaitSocket(wctx, m.exited); err != nil {
		m.Stop()
		return nil, err
	}
	if err := srv.Setup(ctx, "127.0.0.1"); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// Root returns a connection pool as root over the socket.
func (m *MariaDB) Root() *sql.DB {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		m.db = m.srv.DB(RootPassword)
	}
	return m.db
}

// Exec runs statements in order on one connection as root.
func (m *MariaDB) Exec(ctx context.Context, stmts ...string) error {
	if err := mariadb.Exec(ctx, m.Root(), stmts...); err != nil {
		return fmt.Errorf("mariadb %d: %w", m.ServerID, err)
	}
	return nil
}

// ReplicateFrom makes m a replica of src (GTID, slave_pos) and starts it.
func (m *MariaDB) ReplicateFrom(ctx context.Context, src *MariaDB) error {
	return m.srv.ReplicateFrom(ctx, src.srv)
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

// Require skips t under -short (unit tests start no server), and when
// MariaDB is not installed, or then fails it when LEASEHOLD_STRICT=1.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no real MariaDB")
	}
	if Available() {
		return
	}
	if os.Getenv("LEASEHOLD_STRICT") == "1" {
		t.Fatalf("LEASEHOLD_STRICT=1 and MariaDB is not installed (Debian package mariadb-server: %s, %s)", mariadb.Mariadbd, mariadb.InstallDB)
	}
	t.Skipf("skipping: MariaDB not installed (Debian package mariadb-server; set LEASEHOLD_STRICT=1 to fail instead)")
}

// Pair is two throwaway servers in dual-master replication.
type Pair struct{ A, B *MariaDB }

// StartPair starts two servers under t's temporary directory (installed in
// parallel), each replicating from the other, stopped when t ends. Without
// MariaDB installed the test is skipped, or fails when LEASEHOLD_STRICT=1.
func StartPair(t testing.TB) *Pair {
	t.Helper()
	Require(t)
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
// wrote.
func (p *Pair) Sync(ctx context.Context) error {
	if err := mariadb.Sync(ctx, p.A.Root(), p.B.Root(), 10*time.Second); err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	return nil
}
