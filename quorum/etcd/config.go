package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// MinTTL is the smallest lease TTL the backend accepts. It needs an etcd
// server with a short election timeout; default servers round TTLs up to 2 s.
const MinTTL = time.Second

// Config says how to reach the etcd cluster.
type Config struct {
	// Endpoints are the client URLs ("http://10.0.0.1:2379", "https://…").
	Endpoints []string
	// Prefix is prepended to every key; it must end in "/".
	Prefix string
	// CertFile and KeyFile are the client certificate (TLS client auth);
	// CAFile verifies the servers. Any of them turns TLS on.
	CertFile, KeyFile, CAFile string
	// Username and Password authenticate with etcd's auth store.
	Username, Password string
	// DialTimeout bounds connecting (and fetching an auth token).
	DialTimeout time.Duration
}

// DefaultConfig returns the defaults; Endpoints must still be set.
func DefaultConfig() Config {
	return Config{Prefix: "/leasehold/", DialTimeout: 2 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("etcd: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.Endpoints) == 0 {
		bad("endpoints", "must list at least one")
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			bad("endpoints", "empty endpoint")
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") {
		bad("prefix", "%q must start and end with /", c.Prefix)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert_file", "cert_file and key_file go together")
	}
	if (c.Username == "") != (c.Password == "") {
		bad("username", "username and password go together")
	}
	if c.DialTimeout <= 0 {
		bad("dial_timeout", "must be > 0")
	}
	return errors.Join(errs...)
}

// tlsConfig builds the client TLS configuration, nil when TLS is off.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CertFile == "" && c.KeyFile == "" && c.CAFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd: ca_file %s: no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// explain adds the TLS handshake error to a timeout against an https
// endpoint: gRPC reports a failed handshake only as a deadline.
func (c Config) explain(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	for _, ep := range c.Endpoints {
		u, perr := url.Parse(ep)
		if perr != nil || u.Scheme != "https" {
			continue
		}
		if herr := c.probeTLS(u.Host); herr != nil {
			return fmt.Errorf("%w (TLS to %s: %v)", err, u.Host, herr)
		}
	}
	return err
}

// probeTLS performs one handshake and a short read, so that a server that
// rejects our certificate reports it.
func (c Config) probeTLS(host string) error {
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc = tc.Clone()
	tc.NextProtos = []string{"h2"}
	d := &net.Dialer{Timeout: time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", host, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		if strings.Contains(err.Error(), "tls") {
			return err
		}
	}
	return nil
}
