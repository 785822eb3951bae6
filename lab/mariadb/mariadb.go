// Package mariadb is the recipe for throwaway MariaDB servers the lab and
// the tests run: seed 002's dual master (server ids, binlogs,
// auto_increment_increment 2 with offsets 1 and 2, log_slave_updates),
// with GTID replication and a GTID domain per server, read_only ON at
// start. It installs data directories, builds mariadbd's arguments and
// sets up the accounts and the replication of a pair; starting and
// killing the process is the caller's (a netns host, or a test).
//
// Seed 002's slave-skip-errors=all is left out on purpose: it hides the
// divergence a split brain causes.
package mariadb

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// Programs (Debian's mariadb-server).
const (
	Mariadbd  = "/usr/sbin/mariadbd"
	InstallDB = "/usr/bin/mariadb-install-db"
)

// RootPassword is the root password of the throwaway servers (root is
// reachable over TCP too, as the peer fence needs).
const RootPassword = "leasehold-test"

// Available reports whether MariaDB's server and installer are installed.
func Available() bool {
	for _, p := range []string{Mariadbd, InstallDB} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// Server is one server's place: its directory (data, socket, logs), its
// server id (1 or 2) and where it listens on TCP.
type Server struct {
	Dir  string
	ID   int
	Bind string // its address, e.g. 127.0.0.1 or the node's address
	Port int
	// Listen is the address mariadbd binds ("" = Bind); a node behind a
	// VIP binds 0.0.0.0 so that it answers on the VIP too.
	Listen string
	// SemiSync turns on semi-synchronous replication both ways (MariaDB
	// 10.11's built-in plugin): a master acknowledges a commit only once
	// the other server has it in its relay log (wait point AFTER_SYNC),
	// falling back to asynchronous after SemiSyncTimeout without an
	// answer (the peer down) until the peer's replica connects again.
	SemiSync bool
}

// SemiSyncTimeout is rpl_semi_sync_master_timeout of a SemiSync server:
// how long a commit waits for the peer before the master falls back to
// asynchronous replication. It adds to the write outage of a failover
// whose old master is gone (the new master's first commit waits it out).
const SemiSyncTimeout = 500 * time.Millisecond

// Socket is the server's unix socket.
func (s Server) Socket() string { return filepath.Join(s.Dir, "mysqld.sock") }

// Addr is its TCP host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Bind, strconv.Itoa(s.Port)) }

// ErrorLog is mariadbd's error log.
func (s Server) ErrorLog() string { return filepath.Join(s.Dir, "error.log") }

// Install creates the data directory (mariadb-install-db, root with
// password authentication and no password yet).
func (s Server) Install(ctx context.Context) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, InstallDB, "--no-defaults", "--user=root", "--datadir="+filepath.Join(s.Dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--tmpdir="+s.Dir, "--innodb-log-file-size=8M").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb-install-db %s: %w: %s", s.Dir, err, out)
	}
	return nil
}

// Args are mariadbd's arguments (after the program name).
func (s Server) Args() []string {
	id := strconv.Itoa(s.ID)
	args := []string{"--no-defaults", "--user=root",
		"--datadir=" + filepath.Join(s.Dir, "data"), "--socket=" + s.Socket(),
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"), "--tmpdir=" + s.Dir, "--log-error=" + s.ErrorLog(),
		"--port=" + strconv.Itoa(s.Port), "--bind-address=" + cmp.Or(s.Listen, s.Bind), "--skip-name-resolve",
		"--server-id=" + id, "--gtid-domain-id=" + id,
		"--log-bin=" + filepath.Join(s.Dir, "data", "mysql-bin"), "--log-slave-updates",
		"--binlog-ignore-db=mysql", "--binlog-format=ROW",
		"--auto-increment-increment=2", "--auto-increment-offset=" + id,
		"--read-only=ON", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--performance-schema=OFF", "--skip-slave-start", "--max-connections=50",
		// A replica notices a dead connection to its master (a partition:
		// TCP retransmits back off to seconds) within 4 s, heartbeats every
		// second (ReplicateFrom), and reconnects every second.
		"--slave-net-timeout=4"}
	if s.SemiSync {
		args = append(args, "--rpl-semi-sync-master-enabled=ON", "--rpl-semi-sync-slave-enabled=ON",
			"--rpl-semi-sync-master-wait-point=AFTER_SYNC",
			"--rpl-semi-sync-master-timeout="+strconv.FormatInt(SemiSyncTimeout.Milliseconds(), 10))
	}
	return args
}

// WaitSocket waits until the server's socket accepts connections, or
// exited is closed (the process died), or ctx ends.
func (s Server) WaitSocket(ctx context.Context, exited <-chan struct{}) error {
	for {
		if c, err := net.Dial("unix", s.Socket()); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(s.ErrorLog())
			if len(b) > 2000 {
				b = b[len(b)-2000:]
			}
			return fmt.Errorf("mariadbd %d exited at start: %s", s.ID, b)
		case <-ctx.Done():
			return fmt.Errorf("mariadbd %d: no socket: %w", s.ID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DB returns a pool as root over the socket (password RootPassword; ""
// before Setup).
func (s Server) DB(password string) *sql.DB { return s.DBAs("root", password) }

// DBAs returns a pool as user over the socket.
func (s Server) DBAs(user, password string) *sql.DB {
	c := gomysql.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd = "unix", s.Socket(), user, password
	c.Timeout, c.WriteTimeout = 5*time.Second, 5*time.Second
	conn, _ := gomysql.NewConnector(c)
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	return db
}

// Exec runs statements in order on one connection of db.
func Exec(ctx context.Context, db *sql.DB, stmts ...string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mariadb: connect: %w", err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mariadb: %s: %w", q, err)
		}
	}
	return nil
}

// Setup gives root its password (RootPassword), also over TCP from
// replicaHosts' pattern (e.g. "127.0.0.1" or "10.0.0.%"), and creates the
// replication account, all kept out of the binlog (each server sets up
// its own accounts).
func (s Server) Setup(ctx context.Context, hosts string) error {
	db := s.DB("")
	defer db.Close()
	return Exec(ctx, db, "SET SESSION sql_log_bin = 0",
		"CREATE USER IF NOT EXISTS 'root'@'"+hosts+"'",
		"ALTER USER 'root'@'"+hosts+"' IDENTIFIED BY '"+RootPassword+"'",
		"GRANT ALL ON *.* TO 'root'@'"+hosts+"' WITH GRANT OPTION",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY '"+RootPassword+"'",
		"CREATE USER 'repl'@'"+hosts+"' IDENTIFIED BY 'repl'",
		"GRANT REPLICATION SLAVE ON *.* TO 'repl'@'"+hosts+"'")
}

// ReplicateFrom makes s a GTID replica of src and starts it.
func (s Server) ReplicateFrom(ctx context.Context, src Server) error {
	db := s.DB(RootPassword)
	defer db.Close()
	return Exec(ctx, db, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='repl', "+
		"MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1", src.Bind, src.Port), "START SLAVE")
}

// Sync waits, at most timeout each way, until each of two servers has
// applied what the other originated (the GTIDs of its @@gtid_binlog_pos
// that carry its own server id).
func Sync(ctx context.Context, a, b *sql.DB, timeout time.Duration) error {
	for _, pair := range [][2]*sql.DB{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		var pos string
		var sid uint32
		if err := from.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos, @@server_id").Scan(&pos, &sid); err != nil {
			return fmt.Errorf("mariadb: gtid_binlog_pos: %w", err)
		}
		target := ownGTIDs(pos, sid)
		if target == "" {
			continue
		}
		var res sql.NullInt64
		if err := to.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", target, timeout.Seconds()).Scan(&res); err != nil {
			return fmt.Errorf("mariadb: MASTER_GTID_WAIT(%s): %w", target, err)
		}
		if !res.Valid || res.Int64 != 0 {
			return fmt.Errorf("mariadb: %s of server %d not applied by its peer within %v", target, sid, timeout)
		}
	}
	return nil
}

// ownGTIDs keeps the GTIDs (domain-server-seq) of a position that server
// sid originated.
func ownGTIDs(pos string, sid uint32) string {
	var out []string
	for _, g := range strings.Split(pos, ",") {
		f := strings.Split(strings.TrimSpace(g), "-")
		if len(f) == 3 && f[1] == strconv.FormatUint(uint64(sid), 10) {
			out = append(out, strings.TrimSpace(g))
		}
	}
	return strings.Join(out, ",")
}
