package raft

import (
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

// writeCA makes a throwaway CA and one leaf certificate for 127.0.0.1
// signed by it, usable as server and client; it returns the file paths.
func writeCA(t *testing.T, dir, name string) *TLSConfig {
	t.Helper()
	ca := quorumtest.NewPKI(t, dir, name)
	cert, key := ca.Leaf(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, net.IPv4(127, 0, 0, 1))
	return &TLSConfig{CAFile: ca.CAFile, CertFile: cert, KeyFile: key}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	good := writeCA(t, dir, "good")
	v := startVoters(t, 3, good) // a leader was elected over the TLS transport

	a := newBackend(t, v.clientAddrs(), good, testOptions("a"))
	sa := openRun(t, a)
	g, err := sa.Acquire(ctxT(t, time.Second), "g", 1)
	if err != nil {
		t.Fatal(err)
	}
	// A leader change works over TLS, and the lease survives it.
	l := v.leader()
	v.stop(l)
	v.waitLeader()
	h, ok, err := a.Inspect(ctxT(t, 2*time.Second), "g")
	if err != nil || !ok || h.Epoch != g.Epoch {
		t.Fatalf("inspect after leader change: %+v %v %v", h, ok, err)
	}

	// A client with a certificate from another CA, or with none, is refused.
	other := writeCA(t, dir, "other")
	for name, cfg := range map[string]*TLSConfig{"other CA": other, "plain": nil} {
		b := newBackend(t, v.clientAddrs(), cfg, testOptions("b"))
		_, err := b.Open(ctxT(t, 500*time.Millisecond))
		if err == nil {
			t.Fatalf("%s client opened a session", name)
		}
		if errors.Is(err, quorum.ErrLost) || errors.Is(err, quorum.ErrHeld) {
			t.Fatalf("%s client: %v", name, err)
		}
	}
}
