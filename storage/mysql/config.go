package mysql

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of a Config.
const (
	DefaultCatchupTimeout = 10 * time.Second
	DefaultStepTimeout    = 5 * time.Second
	DefaultPeerTimeout    = 2 * time.Second
	DefaultCheckInterval  = time.Second
	DefaultCheckFall      = 3
)

// Policy says what Promote does when the relay log is not applied within
// the catch-up timeout.
type Policy string

const (
	// Refuse: the promotion fails (the group does not take the VIP); the
	// default: transactions the old master committed and this server
	// received are not overtaken by new writes.
	Refuse Policy = "refuse"
	// PromoteAnyway: promote and report it; what was received but not
	// yet applied applies after the new writes (conflicts are possible).
	PromoteAnyway Policy = "promote_anyway"
)

// Config is one MySQL/MariaDB server of a group (the local one), and
// optionally its peer (the other master) for the peer fence.
type Config struct {
	// Socket (a unix socket path) or Address (host:port) of the local
	// server; exactly one.
	Socket, Address string
	// CredentialsFile holds user and password (my.cnf style, see
	// ReadCredentials); it must not be accessible to others.
	CredentialsFile string
	// CatchupTimeout bounds the wait for the relay log to be applied in
	// Promote; CatchupPolicy says what then.
	CatchupTimeout time.Duration
	CatchupPolicy  Policy
	// StepTimeout bounds each statement (and the connect).
	StepTimeout time.Duration
	// Peer is the other master's host:port for the peer fence run by a
	// new owner ("" none); PeerCredentialsFile defaults to
	// CredentialsFile; PeerTimeout bounds the whole peer fence.
	Peer                string
	PeerCredentialsFile string
	PeerTimeout         time.Duration
	// Check is the native health checker.
	Check CheckConfig
}

// CheckConfig is the health checker, with vrrp_script's weight, rise and
// fall: connect, SELECT 1, replication threads, lag.
type CheckConfig struct {
	Interval, Timeout time.Duration
	Weight            int
	Rise, Fall        int
	// MaxLag: a replica further behind (Seconds_Behind_Master) fails the
	// check; 0 leaves lag out.
	MaxLag time.Duration
}

// Defaults returns c with its zero fields filled in.
func (c Config) Defaults() Config {
	if c.CatchupTimeout <= 0 {
		c.CatchupTimeout = DefaultCatchupTimeout
	}
	if c.CatchupPolicy == "" {
		c.CatchupPolicy = Refuse
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.PeerTimeout <= 0 {
		c.PeerTimeout = DefaultPeerTimeout
	}
	if c.PeerCredentialsFile == "" {
		c.PeerCredentialsFile = c.CredentialsFile
	}
	if c.Check.Interval <= 0 {
		c.Check.Interval = DefaultCheckInterval
	}
	if c.Check.Timeout <= 0 {
		c.Check.Timeout = c.Check.Interval
	}
	if c.Check.Rise <= 0 {
		c.Check.Rise = 1
	}
	if c.Check.Fall <= 0 {
		c.Check.Fall = DefaultCheckFall
	}
	return c
}

// Validate checks c, reading the credentials files (their mode and
// syntax; nothing is connected). Errors are "mysql: KEY: message", KEY as
// the configuration file names it.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("mysql: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Socket == "" && c.Address == "":
		bad("socket", "socket or address is required (the local server)")
	case c.Socket != "" && c.Address != "":
		bad("address", "give socket or address, not both")
	case c.Socket != "" && (!filepath.IsAbs(c.Socket) || filepath.Clean(c.Socket) != c.Socket):
		bad("socket", "%q: want an absolute, clean path", c.Socket)
	case c.Address != "":
		if err := checkHostPort(c.Address); err != nil {
			bad("address", "%v", err)
		}
	}
	if c.CredentialsFile == "" {
		bad("credentials_file", "required (a file with user and password, mode 0600)")
	} else if _, err := ReadCredentials(c.CredentialsFile); err != nil {
		bad("credentials_file", "%v", err)
	}
	switch c.CatchupPolicy {
	case "", Refuse, PromoteAnyway:
	default:
		bad("catchup_policy", "%q: want refuse or promote_anyway", c.CatchupPolicy)
	}
	for key, d := range map[string]time.Duration{"catchup_timeout": c.CatchupTimeout, "step_timeout": c.StepTimeout,
		"peer_timeout": c.PeerTimeout, "check.interval": c.Check.Interval, "check.timeout": c.Check.Timeout, "check.max_lag": c.Check.MaxLag} {
		if d < 0 {
			bad(key, "must not be negative")
		}
	}
	if c.Peer != "" {
		if err := checkHostPort(c.Peer); err != nil {
			bad("peer", "%v", err)
		}
		if c.PeerCredentialsFile != "" {
			if _, err := ReadCredentials(c.PeerCredentialsFile); err != nil {
				bad("peer_credentials_file", "%v", err)
			}
		}
	} else if c.PeerCredentialsFile != "" {
		bad("peer_credentials_file", "needs a peer")
	}
	if c.Check.Weight < -253 || c.Check.Weight > 253 {
		bad("check.weight", "%d outside -253..253", c.Check.Weight)
	}
	if c.Check.Rise < 0 || c.Check.Fall < 0 {
		bad("check.rise", "rise and fall must not be negative")
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	return nil
}

// Credentials are a MySQL user and password. String never shows the
// password.
type Credentials struct {
	User, Password string
}

func (c Credentials) String() string { return "user " + c.User + " (password hidden)" }

// ReadCredentials reads a credentials file in my.cnf style: `user = NAME`
// and `password = SECRET` lines, at the top or in a [client] section
// (other sections are skipped; # and ; start comments; values may be
// quoted). The file must not be accessible to others (mode o-rwx); its
// content never appears in an error.
func ReadCredentials(path string) (Credentials, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Credentials{}, err
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return Credentials{}, fmt.Errorf("%s: mode %04o lets others read or write the credentials: chmod o-rwx (e.g. 0600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	section := "client"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		case section != "client":
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Credentials{}, fmt.Errorf("%s:%d: want key = value", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		switch k {
		case "user":
			c.User = v
		case "password":
			c.Password = v
		default:
			return Credentials{}, fmt.Errorf("%s:%d: unknown key %q (want user, password)", path, n, k)
		}
	}
	if c.User == "" {
		return Credentials{}, fmt.Errorf("%s: no user", path)
	}
	return c, nil
}
