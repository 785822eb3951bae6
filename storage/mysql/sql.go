package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// MySQL error numbers SQL looks at.
const (
	errUnknownVariable = 1193
	errNoSuchTable     = 1146
	errUnknownDB       = 1049
	errNoSuchThread    = 1094
	errReadOnly        = 1290
)

// SQL is the real Server, over go-sql-driver/mysql: at most two
// connections (the health check beside a promotion or demotion), each
// recorded by its connection id so that a kill round spares them.
type SQL struct {
	db   *sql.DB
	own  *ownIDs
	what string
}

// Endpoint is where a server listens: Net "unix" (Addr a socket path) or
// "tcp" (Addr host:port).
type Endpoint struct{ Net, Addr string }

func (e Endpoint) String() string { return e.Net + ":" + e.Addr }

// Open returns the Server at e with cred; step bounds the connect and
// each write on the wire. Reads are bounded by each call's ctx (the
// driver closes the connection when it ends), not by a read timeout: a
// MASTER_GTID_WAIT may rightly take the whole catch-up timeout. It
// connects lazily: nothing happens until the first call.
func Open(e Endpoint, cred Credentials, step time.Duration) (*SQL, error) {
	c := gomysql.NewConfig()
	c.Net, c.Addr = e.Net, e.Addr
	c.User, c.Passwd = cred.User, cred.Password
	c.Timeout, c.WriteTimeout = step, step
	c.AllowNativePasswords = true
	c.ParseTime = true
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("mysql: %s: %w", e, err)
	}
	own := &ownIDs{ids: map[uint64]bool{}}
	db := sql.OpenDB(&tracking{Connector: conn, own: own})
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	return &SQL{db: db, own: own, what: e.String()}, nil
}

// Close closes the connections.
func (s *SQL) Close() error { return s.db.Close() }

// ownIDs are the connection ids of our connections (ids are not reused
// by the server until they wrap, so a closed one left here is harmless).
type ownIDs struct {
	mu  sync.Mutex
	ids map[uint64]bool
}

func (o *ownIDs) add(id uint64) {
	o.mu.Lock()
	o.ids[id] = true
	o.mu.Unlock()
}

func (o *ownIDs) has(id uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ids[id]
}

// tracking is a driver.Connector that records each new connection's id.
type tracking struct {
	driver.Connector
	own *ownIDs
}

func (t *tracking) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := t.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	q, ok := c.(driver.QueryerContext)
	if !ok {
		c.Close()
		return nil, errors.New("mysql: driver connection cannot query")
	}
	rows, err := q.QueryContext(ctx, "SELECT CONNECTION_ID()", nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("mysql: read connection id: %w", err)
	}
	v := make([]driver.Value, 1)
	err = rows.Next(v)
	rows.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("mysql: read connection id: %w", err)
	}
	id, err := strconv.ParseUint(fmt.Sprint(asString(v[0])), 10, 64)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("mysql: connection id %v: %w", v[0], err)
	}
	t.own.add(id)
	return c, nil
}

func asString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

func errNumber(err error) uint16 {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Status implements Server.
func (s *SQL) Status(ctx context.Context) (Status, error) {
	var st Status
	var ro int
	if err := s.db.QueryRowContext(ctx, "SELECT @@server_id, @@read_only, @@version").Scan(&st.ServerID, &ro, &st.Version); err != nil {
		return Status{}, fmt.Errorf("%s: SELECT @@server_id, @@read_only: %w", s.what, err)
	}
	st.ReadOnly = ro != 0
	var sro int
	switch err := s.db.QueryRowContext(ctx, "SELECT @@super_read_only").Scan(&sro); {
	case err == nil:
		st.HasSuperReadOnly, st.SuperReadOnly = true, sro != 0
	case errNumber(err) != errUnknownVariable:
		return Status{}, fmt.Errorf("%s: SELECT @@super_read_only: %w", s.what, err)
	}
	switch err := s.db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&st.BinlogPos); {
	case err == nil, errNumber(err) == errUnknownVariable:
	default:
		return Status{}, fmt.Errorf("%s: SELECT @@gtid_binlog_pos: %w", s.what, err)
	}
	var semi int
	switch err := s.db.QueryRowContext(ctx, "SELECT @@rpl_semi_sync_master_enabled").Scan(&semi); {
	case err == nil:
		st.HasSemiSync, st.SemiSyncEnabled = true, semi != 0
	case errNumber(err) != errUnknownVariable:
		return Status{}, fmt.Errorf("%s: SELECT @@rpl_semi_sync_master_enabled: %w", s.what, err)
	}
	if st.SemiSyncEnabled {
		var name, val string
		if err := s.db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'").Scan(&name, &val); err != nil {
			return Status{}, fmt.Errorf("%s: SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status': %w", s.what, err)
		}
		st.SemiSyncActive = strings.EqualFold(val, "ON")
	}
	return st, nil
}

// SetReadOnly implements Server.
func (s *SQL) SetReadOnly(ctx context.Context, on bool) error {
	stmts := []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}
	if !on {
		stmts = []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			if strings.Contains(q, "super_read_only") && errNumber(err) == errUnknownVariable {
				continue // MariaDB: no super_read_only
			}
			return fmt.Errorf("%s: %s: %w", s.what, q, err)
		}
	}
	return nil
}

// Replica implements Server.
func (s *SQL) Replica(ctx context.Context) (Replica, error) {
	r, err := ReplicaOf(ctx, s.db)
	if err != nil {
		return Replica{}, fmt.Errorf("%s: %w", s.what, err)
	}
	return r, nil
}

// ReplicaOf reads SHOW SLAVE STATUS (the default connection) on db.
func ReplicaOf(ctx context.Context, db *sql.DB) (Replica, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return Replica{}, fmt.Errorf("SHOW SLAVE STATUS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Replica{}, fmt.Errorf("SHOW SLAVE STATUS: %w", err)
	}
	if !rows.Next() {
		return Replica{}, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return Replica{}, fmt.Errorf("SHOW SLAVE STATUS: %w", err)
	}
	m := map[string]sql.NullString{}
	for i, c := range cols {
		m[c] = vals[i]
	}
	r := Replica{Configured: true, IORunning: m["Slave_IO_Running"].String, SQLRunning: m["Slave_SQL_Running"].String,
		IOPos: m["Gtid_IO_Pos"].String, LastIOError: m["Last_IO_Error"].String, LastError: m["Last_SQL_Error"].String,
		MasterHost: m["Master_Host"].String}
	if lag := m["Seconds_Behind_Master"]; lag.Valid {
		if n, err := strconv.ParseInt(lag.String, 10, 64); err == nil {
			r.Lag, r.LagKnown = time.Duration(n)*time.Second, true
		}
	}
	return r, nil
}

// WaitApplied implements Server with MASTER_GTID_WAIT.
func (s *SQL) WaitApplied(ctx context.Context, pos string, timeout time.Duration) (bool, error) {
	if pos == "" {
		return true, nil
	}
	var res sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, timeout.Seconds()).Scan(&res); err != nil {
		return false, fmt.Errorf("%s: MASTER_GTID_WAIT(%s): %w", s.what, pos, err)
	}
	return res.Valid && res.Int64 == 0, nil
}

// The epoch table. Each server writes only its own row (no conflict in a
// dual-master pair); rows replicate, so each server learns its peer's.
const (
	epochDB     = "leasehold"
	epochSchema = "CREATE TABLE IF NOT EXISTS leasehold.epoch (server_id INT UNSIGNED NOT NULL PRIMARY KEY, " +
		"epoch BIGINT UNSIGNED NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
)

// Epochs implements Server.
func (s *SQL) Epochs(ctx context.Context) ([]EpochRow, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT server_id, epoch FROM leasehold.epoch ORDER BY server_id")
	if n := errNumber(err); n == errNoSuchTable || n == errUnknownDB {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read the epoch table: %w", s.what, err)
	}
	defer rows.Close()
	var out []EpochRow
	for rows.Next() {
		var r EpochRow
		if err := rows.Scan(&r.ServerID, &r.Epoch); err != nil {
			return nil, fmt.Errorf("%s: read the epoch table: %w", s.what, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RecordEpoch implements Server. It writes while read_only is still on:
// the account needs READ_ONLY ADMIN (MariaDB) or SUPER (MySQL).
func (s *SQL) RecordEpoch(ctx context.Context, epoch uint64) error {
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS " + epochDB, epochSchema} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: create the epoch table: %w", s.what, readOnlyHint(err))
		}
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO leasehold.epoch (server_id, epoch) VALUES (@@server_id, ?) "+
		"ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))", epoch)
	if err != nil {
		return fmt.Errorf("%s: record epoch %d: %w", s.what, epoch, readOnlyHint(err))
	}
	return nil
}

func readOnlyHint(err error) error {
	if errNumber(err) == errReadOnly {
		return fmt.Errorf("%w (the daemon's account must write while read_only is on: grant it READ_ONLY ADMIN, or use root over the socket)", err)
	}
	return err
}

// bypassPrivilege is MariaDB's privilege that ignores read_only (10.11:
// SUPER no longer does). MySQL's SUPER and CONNECTION_ADMIN are stopped
// by super_read_only, which SetReadOnly sets there.
const bypassPrivilege = "READ_ONLY ADMIN"

// Sessions implements Server. An account counts as bypassing read_only
// when any account of the same user name holds READ_ONLY ADMIN directly
// (hosts are not matched: it errs on the side of killing).
func (s *SQL) Sessions(ctx context.Context) ([]Session, error) {
	bypass := map[string]bool{}
	prows, err := s.db.QueryContext(ctx, "SELECT DISTINCT GRANTEE FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = ?", bypassPrivilege)
	if err != nil {
		return nil, fmt.Errorf("%s: read the accounts holding %s: %w", s.what, bypassPrivilege, err)
	}
	for prows.Next() {
		var g string
		if err := prows.Scan(&g); err != nil {
			prows.Close()
			return nil, fmt.Errorf("%s: read the accounts holding %s: %w", s.what, bypassPrivilege, err)
		}
		bypass[granteeUser(g)] = true
	}
	prows.Close()
	rows, err := s.db.QueryContext(ctx, "SELECT ID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST")
	if err != nil {
		return nil, fmt.Errorf("%s: read the processlist: %w", s.what, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var ss Session
		var host sql.NullString
		if err := rows.Scan(&ss.ID, &ss.User, &host, &ss.Command); err != nil {
			return nil, fmt.Errorf("%s: read the processlist: %w", s.what, err)
		}
		ss.Host = host.String
		ss.Own = s.own.has(ss.ID)
		ss.Bypass = bypass[ss.User]
		out = append(out, ss)
	}
	return out, rows.Err()
}

// granteeUser returns NAME of 'NAME'@'HOST'.
func granteeUser(g string) string {
	u, _, _ := strings.Cut(g, "@")
	return strings.ReplaceAll(strings.Trim(u, "'"), "''", "'")
}

// Kill implements Server; a connection already gone is not an error.
func (s *SQL) Kill(ctx context.Context, id uint64) error {
	if _, err := s.db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil && errNumber(err) != errNoSuchThread {
		return fmt.Errorf("%s: KILL CONNECTION %d: %w", s.what, id, err)
	}
	return nil
}
