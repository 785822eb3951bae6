// Package freeport hands out loopback TCP addresses for test servers that
// must be told their address before they bind it (raft peers, etcd members).
//
// Asking the kernel for port 0 and closing the socket is not enough: the same
// port comes back to the next caller (two raft peers got one address in CI),
// and any socket bound to port 0 in a parallel test may take it before the
// server does. So ports are picked below the kernel's ephemeral range, where
// port-0 binds never land, are never handed out twice by one process, and are
// checked bindable before they are returned.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const lowest = 10000

var (
	mu     sync.Mutex
	issued = map[int]bool{}
)

// Addr returns "127.0.0.1:PORT" for a port nobody in this process was given
// before and that is free now.
func Addr(t testing.TB) string {
	t.Helper()
	a, err := pick()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pick() (string, error) {
	hi := ephemeralLow() - 1
	if hi <= lowest {
		return "", fmt.Errorf("freeport: ephemeral range starts at %d, no room below it", hi+1)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lowest + rand.IntN(hi-lowest+1)
		if issued[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		issued[p] = true
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free port in %d-%d after 1000 tries", lowest, hi)
}

// ephemeralLow reads the first port of net.ipv4.ip_local_port_range (32768
// if it cannot be read, the kernel default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
