package etcd_test

import (
	"context"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

// testPKI writes a throwaway CA, a server certificate for 127.0.0.1 and a
// client certificate into dir.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	ca := quorumtest.NewPKI(t, dir, "leasehold-test")
	var p testPKI
	p.ca = ca.CAFile
	p.serverCert, p.serverKey = ca.Leaf(t, "server", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, net.IPv4(127, 0, 0, 1))
	p.clientCert, p.clientKey = ca.Leaf(t, "lh-client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	return p
}

// TestTLSAndAuth runs a member that requires client certificates and has
// auth enabled: the backend works with both, and fails clearly without.
func TestTLSAndAuth(t *testing.T) {
	pki := newTestPKI(t, t.TempDir())
	c := etcdtest.StartOptions(t, etcdtest.Options{Members: 1, ClientTLS: &transport.TLSInfo{
		CertFile: pki.serverCert, KeyFile: pki.serverKey, TrustedCAFile: pki.ca, ClientCertAuth: true,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Set up users as an operator would, then turn auth on.
	tlsInfo := transport.TLSInfo{CertFile: pki.clientCert, KeyFile: pki.clientKey, TrustedCAFile: pki.ca}
	tc, err := tlsInfo.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	prefix := etcd.DefaultConfig().Prefix
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "leasehold"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "leasehold", prefix, clientv3.GetPrefixRangeEnd(prefix),
				clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "lh", "secret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "lh", "leasehold"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth set-up step %d: %v", i, err)
		}
	}

	opts := quorum.ScaledOptions(2 * time.Second)
	opts.Node = "tls-node"
	good := c.Config()
	good.CertFile, good.KeyFile, good.CAFile = pki.clientCert, pki.clientKey, pki.ca
	good.Username, good.Password = "lh", "secret"

	t.Run("TLSAndPassword", func(t *testing.T) {
		b, err := etcd.New(good, opts, etcdtest.Logger("tls-node"))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		s, err := b.Open(ctx)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close(ctx)
		g, err := s.Acquire(ctx, "tls-group", 100)
		if err != nil {
			t.Fatalf("acquire: %v", err)
		}
		h, ok, err := b.Inspect(ctx, "tls-group")
		if err != nil || !ok || h.Node != "tls-node" || h.Epoch != g.Epoch {
			t.Fatalf("inspect = %+v, %v, %v", h, ok, err)
		}
		if h.TTLLeft <= 0 {
			t.Errorf("TTLLeft %v, want > 0", h.TTLLeft)
		}
		if err := s.Release(ctx, g); err != nil {
			t.Fatalf("release: %v", err)
		}
	})

	fails := map[string]struct {
		mod  func(etcd.Config) etcd.Config
		want string // the error must say why
	}{
		"WrongPassword": {func(c etcd.Config) etcd.Config { c.Password = "wrong"; return c }, "authentication failed"},
		"NoPassword":    {func(c etcd.Config) etcd.Config { c.Username, c.Password = "", ""; return c }, "permission denied"},
		"NoClientCert":  {func(c etcd.Config) etcd.Config { c.CertFile, c.KeyFile = "", ""; return c }, "certificate required"},
		"NoTLS": {func(c etcd.Config) etcd.Config {
			c.CertFile, c.KeyFile, c.CAFile = "", "", ""
			return c
		}, "x509"},
	}
	for name, f := range fails {
		t.Run(name, func(t *testing.T) {
			cfg := f.mod(good)
			b, err := etcd.New(cfg, opts, etcdtest.Logger("tls-node"))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			s, err := b.Open(ctx)
			if err == nil {
				defer s.Close(ctx)
				_, err = s.Acquire(ctx, "tls-group", 100)
			}
			if err == nil {
				t.Fatal("acquired without proper credentials")
			}
			if !strings.Contains(err.Error(), f.want) {
				t.Errorf("error %q does not say %q", err, f.want)
			}
			t.Logf("fails with: %v", err)
		})
	}
}
