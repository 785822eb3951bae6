package lvs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script"
)

func target(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := Check{Kind: TCPCheck, Target: target(t, ln.Addr().String()), ConnectTimeout: time.Second}
	p := &NetProber{}
	if o := p.Probe(t.Context(), c); !o.OK {
		t.Fatalf("open port: %+v", o)
	}
	ln.Close()
	if o := p.Probe(t.Context(), c); o.OK || !strings.Contains(o.Err, "refused") {
		t.Fatalf("closed port: %+v", o)
	}
}

func TestProbeHTTP(t *testing.T) {
	body := "healthy\n"
	sum := md5.Sum([]byte(body))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			if r.Host != "www.example.org" {
				http.Error(w, "wrong host "+r.Host, http.StatusBadRequest)
				return
			}
			w.Write([]byte(body))
		case "/moved":
			http.Redirect(w, r, "/health", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tls := httptest.NewTLSServer(srv.Config.Handler)
	defer tls.Close()
	ok200 := []StatusRange{{200, 299}}
	cases := []struct {
		name string
		kind CheckKind
		url  URL
		addr string
		err  string
	}{
		{"status and digest", HTTPGet, URL{Path: "/health", Status: ok200, Digest: hex.EncodeToString(sum[:])}, srv.Listener.Addr().String(), ""},
		{"wrong digest", HTTPGet, URL{Path: "/health", Status: ok200, Digest: strings.Repeat("0", 32)}, srv.Listener.Addr().String(), "digest"},
		{"404", HTTPGet, URL{Path: "/nope", Status: ok200}, srv.Listener.Addr().String(), "status 404"},
		{"a redirect is its own status", HTTPGet, URL{Path: "/moved", Status: []StatusRange{{301, 301}}}, srv.Listener.Addr().String(), ""},
		{"SSL_GET without certificate checks", SSLGet, URL{Path: "/health", Status: ok200}, tls.Listener.Addr().String(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ck := Check{Kind: c.kind, Target: target(t, c.addr), ConnectTimeout: 2 * time.Second, URLs: []URL{c.url}, VirtualHost: "www.example.org"}
			ctx, cancel := contextTimeout(t, ck.ConnectTimeout)
			defer cancel()
			o := (&NetProber{}).Probe(ctx, ck)
			if o.OK != (c.err == "") || !strings.Contains(o.Err, c.err) {
				t.Fatalf("outcome %+v, want error %q", o, c.err)
			}
		})
	}
}

func TestProbeMisc(t *testing.T) {
	cases := []struct {
		line    string
		dynamic bool
		ok      bool
		weight  int
	}{
		{"/bin/sh -c 'exit 0'", false, true, -1},
		{"/bin/sh -c 'exit 1'", true, false, -1},
		{"/bin/sh -c 'exit 12'", true, true, 10},
		{"/bin/sh -c 'exit 12'", false, false, -1},
		{"/bin/sh -c 'sleep 30'", true, false, -1}, // killed at its timeout
	}
	for _, c := range cases {
		cmd, err := script.ParseLine(c.line)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Timeout = 10 * time.Second // a loaded machine may take long to start /bin/sh
		if strings.Contains(c.line, "sleep") {
			cmd.Timeout = 300 * time.Millisecond
		}
		o := (&NetProber{}).Probe(t.Context(), Check{Kind: MiscCheck, Command: &cmd, Dynamic: c.dynamic})
		if o.OK != c.ok || o.Dynamic != c.weight {
			t.Errorf("%s (dynamic %v): %+v", c.line, c.dynamic, o)
		}
	}
}

func contextTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
