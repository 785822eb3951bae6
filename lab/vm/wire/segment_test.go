package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// randomGroup returns a fresh group in 230.0.0.0/8 on a random port, so
// concurrent tests and labs do not hear each other.
func randomGroup() string {
	return fmt.Sprintf("230.%d.%d.%d:%d", rand.IntN(256), rand.IntN(256), 1+rand.IntN(254), 20000+rand.IntN(40000))
}

func openPair(t *testing.T) (*Segment, *Segment) {
	t.Helper()
	g := randomGroup()
	a, err := Open(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := Open(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func recvFrame(t *testing.T, sub *Subscription, within time.Duration) (Frame, bool) {
	t.Helper()
	select {
	case f, ok := <-sub.Frames():
		return f, ok
	case <-time.After(within):
		return Frame{}, false
	}
}

func TestOpenRejects(t *testing.T) {
	for _, g := range []string{"10.0.0.1:3000", "230.1.2.3", "230.1.2.3:0", "[ff02::1]:3000", "nonsense"} {
		if s, err := Open(g); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", g)
		}
	}
}

// Every frame sent by one endpoint is heard once by each endpoint, the
// sender included, byte for byte.
func TestSegmentDelivers(t *testing.T) {
	a, b := openPair(t)
	subA, subB := a.Subscribe(16), b.Subscribe(16)
	frame := bytes.Repeat([]byte{0xab}, 60)
	before := time.Now()
	if err := a.Send(frame); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]*Subscription{"sender": subA, "peer": subB} {
		f, ok := recvFrame(t, sub, 2*time.Second)
		if !ok || !bytes.Equal(f.Data, frame) || f.At.Before(before) {
			t.Fatalf("%s heard %v %x at %v", name, ok, f.Data, f.At)
		}
		if f, ok := recvFrame(t, sub, 200*time.Millisecond); ok {
			t.Errorf("%s heard a second frame %x", name, f.Data)
		}
	}
	// A full subscriber loses frames, counted; the others do not.
	small := b.Subscribe(1)
	for range 3 {
		a.Send(frame)
	}
	for range 3 {
		if _, ok := recvFrame(t, subB, 2*time.Second); !ok {
			t.Fatal("frame lost for a subscriber with room")
		}
	}
	if small.Dropped() != 2 {
		t.Errorf("dropped = %d, want 2", small.Dropped())
	}
	small.Unsubscribe()
	small.Unsubscribe()
	if _, ok := <-small.Frames(); !ok {
		t.Error("the one frame kept was lost on Unsubscribe")
	}
	if _, ok := <-small.Frames(); ok {
		t.Error("channel not closed after Unsubscribe")
	}
	b.Close()
	for range subB.Frames() {
	}
	if err := b.Send(frame); err != ErrClosed {
		t.Errorf("Send after Close = %v", err)
	}
	if _, ok := <-b.Subscribe(1).Frames(); ok {
		t.Error("subscription after Close not closed")
	}
}

// The socket sends only through 127.0.0.1, never beyond the host, and is
// a member of the group on lo only.
func TestSegmentStaysOnLoopback(t *testing.T) {
	a, _ := openPair(t)
	rc, err := a.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ifAddr [4]byte
	var ttl, loop, all int
	var serr error
	rc.Control(func(fd uintptr) {
		ifAddr, serr = unix.GetsockoptInet4Addr(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF)
		ttl, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
		loop, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
		all, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL)
	})
	if serr != nil {
		t.Fatal(serr)
	}
	if netip.AddrFrom4(ifAddr) != loopback || ttl != 0 || loop != 1 || all != 0 {
		t.Errorf("IP_MULTICAST_IF %v TTL %d LOOP %d ALL %d, want 127.0.0.1 0 1 0", netip.AddrFrom4(ifAddr), ttl, loop, all)
	}
	devs, err := igmpDevices(a.Group().Addr())
	if err != nil {
		t.Skipf("no /proc/net/igmp: %v", err)
	}
	if len(devs) != 1 || devs[0] != "lo" {
		t.Errorf("group %v joined on %v, want [lo]", a.Group().Addr(), devs)
	}
}

// igmpDevices lists the devices on which group is joined, from
// /proc/net/igmp (groups in the kernel's byte order, hex).
func igmpDevices(group netip.Addr) ([]string, error) {
	b, err := os.ReadFile("/proc/net/igmp")
	if err != nil {
		return nil, err
	}
	g4 := group.As4()
	want := fmt.Sprintf("%08X", binary.NativeEndian.Uint32(g4[:]))
	var devs []string
	dev := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasPrefix(line, "\t") && len(f) >= 2 {
			dev = strings.TrimSuffix(f[1], ":")
			continue
		}
		if strings.EqualFold(f[0], want) {
			devs = append(devs, dev)
		}
	}
	return devs, nil
}
