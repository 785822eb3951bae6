package netlab_test

import (
	"context"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return names
}

func TestLabUpDownLeavesNothing(t *testing.T) {
	netlabtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	state := filepath.Join(t.TempDir(), "lab.json")
	opts := netlab.DefaultOptions()
	opts.StateFile = state
	l, err := netlab.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Down(ctx)
	if err := l.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	during := netnsList(t)
	for _, ns := range l.NamespaceNames() {
		if !slices.Contains(during, ns) {
			t.Errorf("namespace %s missing after Up; have %v", ns, during)
		}
		if len(ns) > 15 {
			t.Errorf("name %s longer than 15", ns)
		}
	}
	st, err := netlab.ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Namespaces) != 4 || st.ID != l.ID() {
		t.Errorf("state = %+v", st)
	}

	// Layer 2 and 3 work: the client reaches both nodes over v4 and v6,
	// with sockets opened inside Do.
	c := l.Host(netlab.ClientName)
	for _, n := range l.Nodes() {
		var ln net.Listener
		if err := n.Do(func() (err error) {
			ln, err = net.Listen("tcp", ":7001")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
			err := c.Do(func() error {
				conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, 7001).String(), 2*time.Second)
				if err == nil {
					conn.Close()
				}
				return err
			})
			if err != nil {
				t.Errorf("dial %s from client: %v", a, err)
			}
		}
		ln.Close()
	}
	// The listener really was in n1's namespace, not ours.
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:7001", time.Second); err == nil {
		conn.Close()
		t.Errorf("listener leaked into the test's own namespace")
	}
	// Interface names and MACs are as announced.
	out, err := l.Host("n1").Run(ctx, "ip", "-o", "link", "show", "dev", l.Host("n1").Iface)
	if err != nil || !strings.Contains(out, l.Host("n1").MAC.String()) {
		t.Errorf("n1 link: %v %s", err, out)
	}
	// A process started in a host runs in its namespace and is recorded.
	p, err := l.Host("n2").Start(ctx, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if !netlab.InNetns(p.PID, l.Host("n2").NSPath()) || netlab.InNetns(p.PID, l.Host("n1").NSPath()) {
		t.Errorf("sleep %d not in n2's namespace", p.PID)
	}
	st, _ = netlab.ReadState(state)
	if len(st.Procs) != 1 || st.Procs[0].PID != p.PID {
		t.Errorf("state procs = %+v, want pid %d", st.Procs, p.PID)
	}
	if err := l.Host("n1").Freeze(p.PID); err == nil {
		t.Errorf("Freeze of n2's pid from n1 succeeded")
	}

	if err := l.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Errorf("process %d still running after Down", p.PID)
	}
	after := netnsList(t)
	for _, ns := range l.NamespaceNames() {
		if slices.Contains(after, ns) {
			t.Errorf("namespace %s left after Down", ns)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file left: %v", err)
	}
}

// TestCleanupAfterCrash simulates a crashed owner: the state file is all
// that is left, and netlab.Cleanup removes the namespaces and processes it names,
// including an untracked child inside a lab namespace.
func TestCleanupAfterCrash(t *testing.T) {
	netlabtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := netlab.Options{Hosts: []string{"a"}, StateFile: filepath.Join(t.TempDir(), "lab.json")}
	l, err := netlab.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Down(ctx)
	if err := l.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// An untracked process in the namespace (like keepalived's VRRP child).
	orphan := exec.Command("ip", "netns", "exec", l.Host("a").NS, "sleep", "60")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000 && !netlab.InNetns(orphan.Process.Pid, l.Host("a").NSPath()); i++ {
		time.Sleep(time.Millisecond)
	}
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()
	// An unrelated process outside the lab must survive.
	bystander := exec.Command("sleep", "60")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bystander.Process.Kill(); bystander.Wait() }()

	if err := netlab.Cleanup(opts.StateFile); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Errorf("process in lab namespace survived netlab.Cleanup")
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("bystander killed: %v", err)
	}
	for _, ns := range l.NamespaceNames() {
		if slices.Contains(netnsList(t), ns) {
			t.Errorf("namespace %s left after netlab.Cleanup", ns)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []netlab.Options{
		{},
		{Hosts: []string{"toolongname"}},
		{Hosts: []string{"n1", "n1"}},
		{Hosts: []string{"sw"}},
		{Hosts: []string{"Up"}},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", o)
		}
	}
	o := netlab.DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	l, err := netlab.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Host("n2").IPv4.String(); got != "10.99.0.2" {
		t.Errorf("n2 IPv4 = %s", got)
	}
	if got := l.Host(netlab.ClientName).IPv6.String(); got != "fd6c:6864::fe" {
		t.Errorf("client IPv6 = %s", got)
	}
	if l.VIP4().String() != "10.99.0.100" {
		t.Errorf("VIP4 = %s", l.VIP4())
	}
	if l.HostByMAC(l.Host("n1").MAC) != "n1" {
		t.Errorf("HostByMAC")
	}
}

// TestConcurrentLabs brings two labs with identical options up at once:
// distinct names, and each client reaches its own n1 on the same address.
func TestConcurrentLabs(t *testing.T) {
	netlabtest.Require(t)
	labs := make([]*netlab.Lab, 2)
	errs := make(chan error, 2)
	for i := range labs {
		go func() {
			l, err := netlab.New(netlab.DefaultOptions())
			if err == nil {
				labs[i] = l
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err = l.Up(ctx)
			}
			errs <- err
		}()
	}
	for range labs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, l := range labs {
		if l != nil {
			defer l.Down(context.Background())
		}
	}
	if t.Failed() {
		return
	}
	if labs[0].ID() == labs[1].ID() {
		t.Fatalf("same id %s", labs[0].ID())
	}
	for i, l := range labs {
		n1 := l.Host("n1")
		var ln net.Listener
		if err := n1.Do(func() (err error) { ln, err = net.Listen("tcp", ":7002"); return err }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte{byte('0' + i)})
				c.Close()
			}
		}()
	}
	for i, l := range labs {
		var got [1]byte
		err := l.Host(netlab.ClientName).Do(func() error {
			c, err := net.DialTimeout("tcp", "10.99.0.1:7002", 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Read(got[:])
			return err
		})
		if err != nil || got[0] != byte('0'+i) {
			t.Errorf("lab %d: got %q, %v", i, got[:], err)
		}
	}
}
