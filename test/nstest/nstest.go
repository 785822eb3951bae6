// Package nstest runs test code inside a fresh, anonymous network namespace
// on a locked OS thread, so kernel tests never touch the host's interfaces
// and leave nothing behind: the namespace dies with the thread.
//
// Without CAP_NET_ADMIN the test is skipped with a reason, or fails when
// LEASEHOLD_STRICT=1 (CI), as the house rules require.
package nstest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Strict reports whether missing kernel facilities must fail tests.
func Strict() bool { return os.Getenv("LEASEHOLD_STRICT") == "1" }

// Require skips (or, when strict, fails) t with reason unless ok.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("LEASEHOLD_STRICT=1 and %s", reason)
	}
	t.Skipf("skipping: %s (set LEASEHOLD_STRICT=1 to fail instead)", reason)
}

// Run calls fn on a locked OS thread inside a new network namespace with
// lo up. The thread is discarded afterwards, destroying the namespace. fn
// must not start goroutines that expect to be in the namespace (open the
// sockets in fn; they stay bound to it).
func Run(t testing.TB, fn func()) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root (CAP_NET_ADMIN) for a network namespace")
	done := make(chan struct{})
	var setupErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// No UnlockOSThread: the thread is tainted and exits with the goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			setupErr = err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			setupErr = err
			return
		}
		fn()
	}()
	<-done
	if setupErr != nil {
		t.Fatalf("nstest: new network namespace: %v", setupErr)
	}
}

// Link adds an up interface named name (in the calling thread's namespace)
// with the given addresses (CIDR strings). It is one end of a veth pair
// whose other end, name+"p", is up too (this kernel has no dummy driver).
func Link(t testing.TB, name string, addrs ...string) netlink.Link {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(l); err != nil {
		t.Errorf("nstest: add veth %s: %v", name, err)
		return nil
	}
	if p, err := netlink.LinkByName(name + "p"); err == nil {
		netlink.LinkSetUp(p)
	}
	for _, a := range addrs {
		na, err := netlink.ParseAddr(a)
		if err == nil {
			err = netlink.AddrAdd(l, na)
		}
		if err != nil {
			t.Errorf("nstest: address %s on %s: %v", a, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Errorf("nstest: up %s: %v", name, err)
	}
	link, _ := netlink.LinkByName(name)
	return link
}

// Pair adds a veth pair name and name+"p", both up, with the IPv4 address
// a (CIDR) on name and b on name+"p", and lets each accept packets from
// the other's (local) address: both ends live in this namespace.
func Pair(t testing.TB, name, a, b string) {
	t.Helper()
	if Link(t, name, a) == nil {
		t.Fatalf("nstest: no link %s", name)
	}
	peer, err := netlink.LinkByName(name + "p")
	if err == nil {
		var na *netlink.Addr
		if na, err = netlink.ParseAddr(b); err == nil {
			err = netlink.AddrAdd(peer, na)
		}
	}
	if err != nil {
		t.Fatalf("nstest: address %s on %sp: %v", b, name, err)
	}
	for _, f := range []string{"all", name, name + "p"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/accept_local", []byte("1"), 0); err != nil {
			t.Fatalf("nstest: accept_local on %s: %v", f, err)
		}
	}
}
