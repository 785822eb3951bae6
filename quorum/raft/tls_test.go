package raft

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// writeCA makes a throwaway CA and one leaf certificate for 127.0.0.1
// signed by it, usable as server and client; it returns the file paths.
func writeCA(t *testing.T, dir, name string) *TLSConfig {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) string {
		p := filepath.Join(dir, name+"-"+file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &TLSConfig{
		CAFile:   write("ca.pem", "CERTIFICATE", caDER),
		CertFile: write("cert.pem", "CERTIFICATE", der),
		KeyFile:  write("key.pem", "EC PRIVATE KEY", keyDER),
	}
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
