package labctl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/lab/netlab"
)

// MySQLPort is where each lab node's mariadbd listens (on its own
// address, in its namespace).
const MySQLPort = 3306

// The lab's application account: what the write checker uses through the
// VIP (no READ_ONLY ADMIN, so read_only binds it).
const (
	AppUser     = "app"
	AppPassword = "app"
	// The drills' reading account (no READ_ONLY ADMIN).
	AuditUser     = "auditor"
	AuditPassword = "auditor"
)

// mysqlServer is node i's (0-based) MariaDB.
func (l *Lab) mysqlServer(i int) mariadb.Server {
	n := l.meta.Nodes[i]
	return mariadb.Server{Dir: filepath.Join(l.dir, n, "mysql"), ID: i + 1, Bind: l.net.Host(n).IPv4.String(), Port: MySQLPort,
		Listen: "0.0.0.0", SemiSync: l.meta.SemiSync} // and the VIP
}

// SemiSync reports whether the lab's MariaDB pair replicates
// semi-synchronously (lab up --mysql --semi-sync).
func (l *Lab) SemiSync() bool { return l.meta.SemiSync }

// MySQLAddr is node's MariaDB address (host:port), "" if the lab has none.
func (l *Lab) MySQLAddr(node string) string {
	for i, n := range l.meta.Nodes {
		if n == node && l.meta.MySQL {
			return l.mysqlServer(i).Addr()
		}
	}
	return ""
}

// MySQLAuditor returns a pool over node's MariaDB socket (from the host:
// the socket is a file in the lab directory) as the lab's auditor, an
// account that can read everything (SELECT, SLAVE MONITOR) but holds no
// READ_ONLY ADMIN: the daemons kill the sessions of accounts that ignore
// read_only on a read-only server, root's included, and an audit must not
// be cut off by that.
func (l *Lab) MySQLAuditor(node string) (*sql.DB, error) {
	s, err := l.mysqlOf(node)
	if err != nil {
		return nil, err
	}
	return s.DBAs(AuditUser, AuditPassword), nil
}

func (l *Lab) mysqlOf(node string) (mariadb.Server, error) {
	if i := slices.Index(l.meta.Nodes, node); i >= 0 && l.meta.MySQL {
		return l.mysqlServer(i), nil
	}
	return mariadb.Server{}, fmt.Errorf("labctl: %s has no MariaDB (lab up --mysql)", node)
}

// MySQLRoot returns a pool over node's MariaDB socket as root (for a
// benchmark's own setup, e.g. both servers writable as under keepalived).
func (l *Lab) MySQLRoot(node string) (*sql.DB, error) {
	s, err := l.mysqlOf(node)
	if err != nil {
		return nil, err
	}
	return s.DB(mariadb.RootPassword), nil
}

// credentialsPath is node's credentials file (root, mode 0600).
func (l *Lab) credentialsPath(node string) string { return filepath.Join(l.dir, node, "mysql.cnf") }

// startMySQL installs and starts a MariaDB in each node's namespace (two
// nodes), sets up the accounts, GTID replication both ways, the checker's
// database and its application account. mariadbd runs detached and is
// recorded like every lab process, so Down kills it.
func (l *Lab) startMySQL(ctx context.Context) error {
	if len(l.meta.Nodes) != 2 {
		return fmt.Errorf("%w: --mysql wants 2 nodes (a dual-master pair)", ErrBadOptions)
	}
	srvs := []mariadb.Server{l.mysqlServer(0), l.mysqlServer(1)}
	var wg sync.WaitGroup
	errs := make([]error, len(srvs))
	for i, s := range srvs {
		wg.Go(func() { errs[i] = s.Install(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Accounts for the lab's /24 ("10.99.0.%").
	hosts := trimLastOctet(l.net.Host(l.meta.Nodes[0]).IPv4.String()) + "%"
	for i, s := range srvs {
		n := l.meta.Nodes[i]
		rec, err := l.net.Host(n).StartDetached(l.logPath("mariadb-"+n), mariadb.Mariadbd, s.Args()...)
		if err != nil {
			return err
		}
		l.mu.Lock()
		if l.meta.MariaDB == nil {
			l.meta.MariaDB = map[string]netlab.ProcRecord{}
		}
		l.meta.MariaDB[n] = rec
		l.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = s.WaitSocket(wctx, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("labctl: %s: %w (see %s)", n, err, s.ErrorLog())
		}
		if err := s.Setup(ctx, hosts); err != nil {
			return fmt.Errorf("labctl: %s: %w", n, err)
		}
		cred := fmt.Sprintf("[client]\nuser = root\npassword = %s\n", mariadb.RootPassword)
		if err := os.WriteFile(l.credentialsPath(n), []byte(cred), 0o600); err != nil {
			return err
		}
	}
	if err := errors.Join(srvs[0].ReplicateFrom(ctx, srvs[1]), srvs[1].ReplicateFrom(ctx, srvs[0])); err != nil {
		return fmt.Errorf("labctl: replication: %w", err)
	}
	db := srvs[0].DB(mariadb.RootPassword)
	defer db.Close()
	app := fmt.Sprintf("'%s'@'%s'", AppUser, hosts)
	auditor := fmt.Sprintf("'%s'@'localhost'", AuditUser)
	return mariadb.Exec(ctx, db, "CREATE DATABASE IF NOT EXISTS leasehold_check", mysqlcheck.Schema,
		"CREATE USER IF NOT EXISTS "+app+" IDENTIFIED BY '"+AppPassword+"'",
		"GRANT SELECT, INSERT ON leasehold_check.* TO "+app, "GRANT SELECT ON leasehold.* TO "+app,
		"CREATE USER IF NOT EXISTS "+auditor+" IDENTIFIED BY '"+AuditPassword+"'",
		"GRANT SELECT, SLAVE MONITOR ON *.* TO "+auditor)
}

// trimLastOctet turns "10.99.0.0" into "10.99.0.".
func trimLastOctet(a string) string {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '.' {
			return a[:i+1]
		}
	}
	return a
}

// mysqlSection is node i's mysql section (group 1), indented for an
// instance.
func (l *Lab) mysqlSection(i int) string {
	n := l.meta.Nodes[i]
	peer := l.mysqlServer(1 - i)
	return fmt.Sprintf("    mysql:\n      socket: %s\n      credentials_file: %s\n      peer: \"%s\"\n      check: {interval: 0.5, fall: 2}\n",
		l.mysqlServer(i).Socket(), l.credentialsPath(n), peer.Addr())
}

// KillMySQL kills node's mariadbd (SIGKILL, by its recorded PID): a
// mysqld crash.
func (l *Lab) KillMySQL(node string) error {
	l.mu.Lock()
	rec, ok := l.meta.MariaDB[node]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q runs no MariaDB", netlab.ErrNoHost, node)
	}
	return rec.Signal(syscall.SIGKILL)
}

// StartMySQL starts node's mariadbd again (read_only ON, as every start)
// and its replication, and waits until it answers.
func (l *Lab) StartMySQL(ctx context.Context, node string) error {
	i := slices.Index(l.meta.Nodes, node)
	if i < 0 || !l.meta.MySQL {
		return fmt.Errorf("%w: %q runs no MariaDB", netlab.ErrNoHost, node)
	}
	s := l.mysqlServer(i)
	rec, err := l.net.Host(node).StartDetached(l.logPath("mariadb-"+node), mariadb.Mariadbd, s.Args()...)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.meta.MariaDB[node] = rec
	l.mu.Unlock()
	if err := l.saveMeta(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.WaitSocket(wctx, nil); err != nil {
		return fmt.Errorf("labctl: %s: %w (see %s)", node, err, s.ErrorLog())
	}
	db := s.DB(mariadb.RootPassword)
	defer db.Close()
	// The node's leasehold kills root's sessions on a read-only server
	// (root ignores read_only) at every health check: a session can be
	// cut between connect and statement, so a few tries.
	for range 5 {
		if err = mariadb.Exec(ctx, db, "START SLAVE"); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}
