package wire_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"github.com/leasehold/leasehold/lab/vm/wire"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// TestAgainstLinux runs both checkers against real Linux stacks: a netlab
// lab's bridge is relayed onto a segment, n1 and then n2 hold the VIP and
// serve a netlab.Responder. It needs root (skipped otherwise, like
// netlab's tests) and checks what the fake nodes cannot: that kernels
// accept the client's ARP and TCP frames (checksums included) and answer.
func TestAgainstLinux(t *testing.T) {
	opts := netlab.DefaultOptions()
	opts.Client = false
	l := netlabtest.NewForTest(t, opts)
	n1, n2 := l.Host("n1"), l.Host("n2")
	names := map[string]string{n1.MAC.String(): "n1", n2.MAC.String(): "n2"}
	const port = 7300
	vip := netip.PrefixFrom(l.VIP4(), 24)
	client := netip.PrefixFrom(l.Addr4(250), 24)

	seg, err := wire.Open(fmt.Sprintf("230.66.%d.%d:%d", rand.IntN(256), 1+rand.IntN(254), 20000+rand.IntN(40000)))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	arpP := wire.NewARPProber(l.Timebase(), seg, vip.Addr(), names)
	tcpP := wire.NewTCPProber(l.Timebase(), seg, client, netip.AddrPortFrom(vip.Addr(), port), names)
	ours := []net.HardwareAddr{arpP.MAC(), tcpP.MAC()}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	run("relay", func(ctx context.Context) error { return relay(ctx, l.Switch(), seg, ours) })
	for _, h := range []*netlab.Host{n1, n2} {
		// veth leaves TCP checksums to an offload that never happens on
		// the way to a packet socket; a qemu NIC on a socket netdev
		// offers no offload, so its guest sums in full. Do the same.
		if err := h.Do(func() error { return txChecksumOff(h.Iface) }); err != nil {
			t.Fatalf("%s: tx checksum offload off: %v", h.Name, err)
		}
		r := netlab.NewResponder(h, port)
		run("responder "+h.Name, r.Run)
		<-r.Ready()
	}
	run("arp prober", arpP.Run)
	run("tcp prober", tcpP.Run)
	<-arpP.Ready()
	<-tcpP.Ready()

	lastNode := func(want string) func() bool {
		return func() bool {
			s := tcpP.Samples()
			return len(s) > 3 && !slices.ContainsFunc(s[len(s)-3:], func(x netlab.TCPSample) bool { return x.Node != want })
		}
	}
	lastHosts := func(want ...string) func() bool {
		return func() bool {
			r := arpP.Rounds()
			return len(r) > 1 && slices.Equal(r[len(r)-2].Hosts, want)
		}
	}
	if err := n1.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	poll(t, "n1 answers ARP probes", lastHosts("n1"))
	if !pollOK(15*time.Second, lastNode("n1")) {
		s := tcpP.Samples()
		t.Logf("last samples: %+v", s[max(0, len(s)-5):])
		out, _ := n1.Run(context.Background(), "nstat", "-az")
		t.Logf("n1 nstat: %s", out)
		out, _ = n1.Run(context.Background(), "ip", "neigh")
		t.Logf("n1 neigh: %s", out)
		t.FailNow()
	}
	if err := n2.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	poll(t, "both answer ARP probes", lastHosts("n1", "n2"))
	if err := n1.DelAddr(vip); err != nil {
		t.Fatal(err)
	}
	// n2 added the VIP without announcing it; the client follows once
	// its probes to n1 time out and it asks again.
	poll(t, "n2 answers the client", lastNode("n2"))
	cancel()
	wg.Wait()

	if len(arpP.DualRounds()) == 0 {
		t.Error("no dual round while both held the VIP")
	}
	var who []string
	for _, iv := range tcpP.Answerers() {
		if len(iv.Who) == 1 && !slices.Contains(who, iv.Who[0]) {
			who = append(who, iv.Who[0])
		}
	}
	if !slices.Equal(who, []string{"n1", "n2"}) {
		t.Errorf("answerers %v, want [n1 n2]", who)
	}
	// Every SYN-ACK was reset: nothing half-open is left in n1 or n2.
	for _, h := range []*netlab.Host{n1, n2} {
		out, err := h.Run(context.Background(), "ss", "-Htn", "state", "syn-recv")
		if err != nil || out != "" {
			t.Errorf("%s: half-open connections %q (%v)", h.Name, out, err)
		}
	}
}

// txChecksumOff is "ethtool -K ifname tx off" (ETHTOOL_STXCSUM).
func txChecksumOff(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&value)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

func pollOK(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !pollOK(15*time.Second, cond) {
		t.Fatalf("timed out waiting: %s", what)
	}
}

// relay joins the lab's bridge to seg: frames from the lab go onto the
// segment, frames from the checkers (source MAC in ours) into the lab.
func relay(ctx context.Context, sw *netlab.Host, seg *wire.Segment, ours []net.HardwareAddr) error {
	var conn *packet.Conn
	if err := sw.Do(func() error {
		ifi, err := net.InterfaceByName(sw.Iface)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, 0x0003 /* ETH_P_ALL */, nil)
		return err
	}); err != nil {
		return err
	}
	// Frames to the checkers' MACs are unknown unicast to the bridge:
	// handed up to the bridge device only when it is promiscuous.
	if err := conn.SetPromiscuous(true); err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	isOurs := func(f []byte) bool {
		return len(f) >= 12 && slices.ContainsFunc(ours, func(m net.HardwareAddr) bool { return bytes.Equal(f[6:12], m) })
	}
	sub := seg.Subscribe(4096)
	defer sub.Unsubscribe()
	go func() {
		for f := range sub.Frames() {
			if isOurs(f.Data) {
				dst := &packet.Addr{HardwareAddr: net.HardwareAddr(f.Data[0:6])}
				conn.WriteTo(f.Data, dst)
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if !isOurs(buf[:n]) {
			seg.Send(slices.Clone(buf[:n]))
		}
	}
}
