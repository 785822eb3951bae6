// Package netlabtest holds the test-only helpers of package netlab: the
// strictness switch and a lab bound to a test's lifetime.
package netlabtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
)

// Strict reports whether LEASEHOLD_STRICT=1: missing kernel facilities must
// then fail tests instead of skipping them.
func Strict() bool { return os.Getenv("LEASEHOLD_STRICT") == "1" }

// Require skips t (or fails it, when strict) unless the lab can run here:
// root, and iproute2's ip and nft on PATH. Extra programs (e.g.
// "/usr/sbin/keepalived") may be named.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root for network namespaces"
	}
	for _, p := range append([]string{"ip", "nft"}, programs...) {
		if _, err := exec.LookPath(p); err != nil && reason == "" {
			reason = "needs " + p + " (" + err.Error() + ")"
		}
	}
	if reason == "" {
		return
	}
	if Strict() {
		t.Fatalf("LEASEHOLD_STRICT=1 and %s", reason)
	}
	t.Skipf("skipping: %s (set LEASEHOLD_STRICT=1 to fail instead)", reason)
}

// NewForTest calls Require, cleans up labs left by crashed earlier runs,
// brings a lab up and registers its Down with t.Cleanup.
func NewForTest(t testing.TB, opts netlab.Options, programs ...string) *netlab.Lab {
	t.Helper()
	Require(t, programs...)
	if _, err := netlab.CleanupStale(netlab.DefaultStateDir); err != nil {
		t.Logf("netlab: cleaning stale labs: %v", err)
	}
	l, err := netlab.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return l
}
