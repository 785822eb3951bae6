package lvs

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/leasehold/leasehold/script"
)

// Prober runs one check and says how it went. It must return by the
// context's deadline (connect_timeout, or misc_timeout for MISC_CHECK).
type Prober interface {
	Probe(ctx context.Context, c Check) Outcome
}

// MaxBody bounds what an HTTP_GET reads of a body to digest it.
const MaxBody = 16 << 20

// NetProber is the real Prober: TCP connects, HTTP(S) GETs, and MISC_CHECK
// scripts through package script (its safety checks, process group,
// timeout and minimal environment).
type NetProber struct {
	// Dialer makes the checks' connections (zero: net.Dialer's defaults).
	Dialer net.Dialer
}

// Probe implements Prober.
func (p *NetProber) Probe(ctx context.Context, c Check) Outcome {
	var err error
	dynamic := -1
	switch c.Kind {
	case TCPCheck:
		// The connection is closed at once: no keep-alive probes to set
		// up (three setsockopt calls a check saved).
		d := p.Dialer
		if d.KeepAlive == 0 {
			d.KeepAlive = -1
		}
		var conn net.Conn
		if conn, err = d.DialContext(ctx, "tcp", c.Target.String()); err == nil {
			conn.Close()
		}
	case HTTPGet, SSLGet:
		err = p.get(ctx, c)
	case MiscCheck:
		dynamic, err = misc(ctx, c)
	default:
		err = fmt.Errorf("unknown checker %q", c.Kind)
	}
	if err != nil {
		return Outcome{Dynamic: -1, Err: err.Error()}
	}
	return Outcome{OK: true, Dynamic: dynamic}
}

// get fetches every url of an HTTP_GET or SSL_GET; all must answer with an
// accepted status (and digest, if set). Certificates are not verified
// (keepalived's SSL_GET does not either): the check is of the service,
// not of its identity.
func (p *NetProber) get(ctx context.Context, c Check) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return p.Dialer.DialContext(ctx, "tcp", c.Target.String())
		},
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: c.VirtualHost}, //nolint:gosec // see above
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	scheme := "http"
	if c.Kind == SSLGet {
		scheme = "https"
	}
	host := c.VirtualHost
	if host == "" {
		host = c.Target.String()
	}
	for _, u := range c.URLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+u.Path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		h := md5.New()
		_, err = io.Copy(h, io.LimitReader(resp.Body, MaxBody))
		resp.Body.Close()
		switch {
		case !statusOK(u.Status, resp.StatusCode):
			return fmt.Errorf("GET %s: status %d", u.Path, resp.StatusCode)
		case err != nil:
			return fmt.Errorf("GET %s: body: %w", u.Path, err)
		case u.Digest != "" && hex.EncodeToString(h.Sum(nil)) != u.Digest:
			return fmt.Errorf("GET %s: digest %x, want %s", u.Path, h.Sum(nil), u.Digest)
		}
	}
	return nil
}

// misc runs a MISC_CHECK script: exit 0 is a success, 1 a failure, and
// with misc_dynamic 2-255 a success setting the weight to status − 2
// (without it any non-zero status fails).
func misc(ctx context.Context, c Check) (int, error) {
	if c.Command == nil {
		return -1, errors.New("MISC_CHECK without a script")
	}
	r := script.Run(ctx, *c.Command)
	switch {
	case r.OK():
		return -1, nil
	case c.Dynamic && r.Exit >= 2 && r.Exit <= 255 && !r.TimedOut:
		return r.Exit - 2, nil
	}
	out := strings.TrimSpace(string(r.Output))
	if len(out) > 200 {
		out = out[:200]
	}
	if out != "" {
		return -1, fmt.Errorf("%s: %s", r.Reason(), out)
	}
	return -1, errors.New(r.Reason())
}
