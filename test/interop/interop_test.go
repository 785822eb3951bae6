// Package interop runs leasehold (quorum none) against the real keepalived
// from Debian's package, in network namespaces, and checks the VRRP
// election both ways, over VRRPv2, v3, IPv6 and unicast, with the invariant
// checkers of lab/netlab watching the VIP.
package interop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/test/lhtest"
	"github.com/leasehold/leasehold/vrrp"
)

type stopKind int

const (
	graceful stopKind = iota // SIGTERM: priority-0 advert, VIP removed
	kill9                    // SIGKILL: nothing sent, VIP left behind
)

func (s stopKind) String() string { return [...]string{"graceful", "kill9"}[s] }

// failover starts the master side, then the backup, checks the backup
// stays backup, stops the master and checks the takeover.
func failover(t *testing.T, p pair, how stopKind) {
	w := newWorld(t, p)
	master, backup := w.ka, w.lh
	startMaster, startBackup := w.startKeepalived, w.startLeasehold
	if p.lhMaster {
		master, backup = w.lh, w.ka
		startMaster, startBackup = w.startLeasehold, w.startKeepalived
	}
	downInterval := 3*p.interval + p.interval // 3 × interval + skew (≤ interval)

	startMaster()
	w.waitFor(master.Name+" to hold the VIP", 10*time.Second+4*p.interval, func() bool { return w.holds(master.Name) })
	startBackup()
	time.Sleep(downInterval + time.Second)
	if h := w.holders(); len(h) != 1 || h[0] != master.Name {
		t.Fatalf("after the backup started, VIP holders = %v, want only %s", h, master.Name)
	}
	if !p.lhMaster {
		if st := w.lhState(); st != "backup" {
			t.Fatalf("leasehold state %q, want backup while keepalived is master", st)
		}
		if s, _ := w.lhd.Status(); s.Instances[0].Recv == 0 {
			t.Fatalf("leasehold received no adverts from keepalived: %+v", s)
		}
	}

	t0 := w.lab.Timebase().Now()
	switch {
	case how == graceful && p.lhMaster:
		w.lhd.Signal(syscall.SIGTERM)
	case how == graceful:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.kad.Stop(ctx); err != nil {
			t.Fatalf("keepalived stop: %v", err)
		}
	case p.lhMaster:
		w.lhd.Kill9()
	default:
		if err := w.kad.Kill9(); err != nil {
			t.Fatalf("keepalived kill -9: %v", err)
		}
	}
	w.waitFor(backup.Name+" to take the VIP", 10*time.Second+5*p.interval, func() bool { return w.holds(backup.Name) })
	t1 := w.addedAt(backup.Name, t0)
	took := t1.Sub(t0)
	t.Logf("%s %s of %s: %s added the VIP after %v", p.name(), how, master.Name, backup.Name, took)

	// The protocol's order of events, with slack for a loaded machine.
	switch how {
	case graceful:
		// A priority-0 advert makes the backup wait only its skew time,
		// well under the master-down interval.
		if p.interval >= time.Second && took >= 3*p.interval-500*time.Millisecond {
			t.Errorf("graceful takeover took %v: the backup waited for the down timer, not the skew", took)
		}
		w.waitFor(master.Name+" to release the VIP", 5*time.Second, func() bool { return !w.holds(master.Name) })
		if r := w.removedAt(master.Name, t0); r.IsZero() || t1.Before(r) && p.interval >= time.Second {
			t.Errorf("graceful: %s removed the VIP at %v, after %s added it at %v", master.Name, r, backup.Name, t1)
		}
	case kill9:
		// Nothing was sent: the backup waits the full master-down interval.
		if took < 3*p.interval-p.interval/2 {
			t.Errorf("kill -9 takeover after %v, before 3 × advert_int (%v)", took, 3*p.interval)
		}
		// Without a quorum the dead master's VIP stays: keepalived's split
		// brain, which quorum "none" reproduces by design.
		if !w.holds(master.Name) {
			t.Logf("note: %s's VIP vanished after kill -9", master.Name)
		}
	}

	// Afterwards the VIP is served by the new master.
	time.Sleep(1500 * time.Millisecond)
	after := t1
	if w.arp != nil {
		ans := w.arpAnswerers(after)
		if ans[backup.Name] == 0 {
			t.Errorf("after takeover ARP answers for the VIP came from %v, not %s", ans, backup.Name)
		}
		if how == graceful && len(ans) != 1 {
			t.Errorf("after a graceful takeover ARP answers came from %v, want only %s", ans, backup.Name)
		}
	}
	if got := w.lastTCPAnswer(after); got != backup.Name {
		t.Errorf("after takeover the TCP probe through the VIP reached %q, want %s", got, backup.Name)
	}
}

func (p pair) name() string {
	s := "VRRPv2"
	if p.version == 3 {
		s = "VRRPv3"
	}
	if p.ipv6 {
		s += "/IPv6"
	}
	if p.unicast {
		s += "/unicast"
	}
	return s + "@" + p.interval.String()
}

func runBoth(t *testing.T, p pair, kinds ...stopKind) {
	for _, how := range kinds {
		t.Run(how.String(), func(t *testing.T) { failover(t, p, how) })
	}
}

// 1. keepalived MASTER 120, leasehold BACKUP 100, VRRPv2, advert_int 1, PASS.
func TestKeepalivedMasterLeaseholdBackup(t *testing.T) {
	runBoth(t, pair{version: 2, interval: time.Second, authPass: "12345678910", vrid: 51}, graceful, kill9)
}

// 2. Reverse roles.
func TestLeaseholdMasterKeepalivedBackup(t *testing.T) {
	runBoth(t, pair{version: 2, interval: time.Second, authPass: "12345678910", vrid: 51, lhMaster: true}, graceful, kill9)
}

// 3. VRRPv3 at 0.1 s (centiseconds) both ways, and IPv6 VRRPv3 both ways.
func TestVRRPv3Fast(t *testing.T) {
	for _, lhMaster := range []bool{false, true} {
		t.Run(map[bool]string{false: "keepalived-master", true: "leasehold-master"}[lhMaster], func(t *testing.T) {
			runBoth(t, pair{version: 3, interval: 100 * time.Millisecond, vrid: 52, lhMaster: lhMaster}, graceful, kill9)
		})
	}
}

func TestVRRPv3IPv6(t *testing.T) {
	for _, lhMaster := range []bool{false, true} {
		t.Run(map[bool]string{false: "keepalived-master", true: "leasehold-master"}[lhMaster], func(t *testing.T) {
			runBoth(t, pair{version: 3, interval: 100 * time.Millisecond, ipv6: true, vrid: 53, lhMaster: lhMaster}, graceful)
		})
	}
}

// 4. Unicast peers both ways.
func TestUnicast(t *testing.T) {
	for _, lhMaster := range []bool{false, true} {
		t.Run(map[bool]string{false: "keepalived-master", true: "leasehold-master"}[lhMaster], func(t *testing.T) {
			runBoth(t, pair{version: 2, interval: time.Second, authPass: "1111", unicast: true, vrid: 54, lhMaster: lhMaster}, graceful)
		})
	}
}

// 5. Hostile adverts from a third namespace: a wrong auth_pass, a wrong
// VRID and a TTL of 64, all with priority 250, and garbage; each is dropped
// under its reason and the election is not disturbed.
func TestHostileAdvertsAreDropped(t *testing.T) {
	p := pair{version: 2, interval: time.Second, authPass: "secret12", vrid: 55, lhMaster: true}
	w := newWorld(t, p)
	w.startLeasehold()
	w.waitFor("leasehold to hold the VIP", 10*time.Second, func() bool { return w.holds("lh") })
	w.startKeepalived()
	time.Sleep(5 * time.Second)
	since := w.lab.Timebase().Now()

	good := vrrp.Advert{Version: 2, VRID: p.vrid, Priority: 250, AuthType: vrrp.AuthPass,
		AuthData: vrrp.PassAuth(p.authPass), Interval: time.Second, Addrs: []netip.Addr{w.vip}}
	wrongAuth := good
	wrongAuth.AuthData = vrrp.PassAuth("guessed!")
	wrongVRID := good
	wrongVRID.VRID = p.vrid + 1
	send := []struct {
		a   vrrp.Advert
		ttl int
	}{{wrongAuth, 255}, {wrongVRID, 255}, {good, 64}}
	// `leasehold vrrp dump` on the keepalived host shows every advert on
	// the wire with the reason it would be dropped for this VRID.
	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dumpOut := &labdaemon.SyncBuffer{}
	dump := w.ka.Command(w.ctx, bin, "vrrp", "dump", "--iface", w.ka.Iface, "--duration", "3s",
		"--vrid", fmt.Sprint(p.vrid), "--auth-pass", p.authPass, "--advert-int", "1s")
	dump.Stdout, dump.Stderr = dumpOut, dumpOut
	dumpProc, err := w.ka.StartCmd(dump)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for round := 0; round < 5; round++ {
		for _, s := range send {
			w.spoof(s.a, s.ttl, nil)
		}
		w.spoof(good, 255, []byte{0x21, p.vrid, 250}) // truncated garbage
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second)
	dumpProc.Wait(context.Background())
	out := dumpOut.String()
	for _, want := range []string{"DROP auth_mismatch", "DROP bad_ttl", "DROP truncated", "DROP other_vrid",
		"dropped auth_mismatch", fmt.Sprintf("VRRPv2 vrid %d prio 120", p.vrid)} {
		if !strings.Contains(out, want) {
			t.Errorf("vrrp dump output lacks %q:\n%s", want, out)
		}
	}

	st, err := w.lhd.Status()
	if err != nil {
		t.Fatal(err)
	}
	drops := st.Instances[0].Drops
	if drops["auth_mismatch"] < 5 || drops["bad_ttl"] < 5 {
		t.Errorf("instance drops = %v, want ≥5 auth_mismatch and ≥5 bad_ttl", drops)
	}
	if st.SocketDrops["other_vrid"] < 5 || st.SocketDrops["truncated"] < 5 {
		t.Errorf("socket drops = %v, want ≥5 other_vrid and ≥5 truncated", st.SocketDrops)
	}
	if got := w.lhState(); got != "master" {
		t.Errorf("leasehold state %q after hostile adverts, want master", got)
	}
	if r := w.removedAt("lh", since); !r.IsZero() {
		t.Errorf("leasehold dropped the VIP at %v during hostile adverts", r)
	}
	if w.holds("ka") {
		t.Errorf("keepalived took the VIP during hostile adverts")
	}
}

// spoof sends one advert (or raw bytes) to 224.0.0.18 from host x with ttl.
func (w *world) spoof(a vrrp.Advert, ttl int, raw []byte) {
	w.t.Helper()
	err := w.x.Do(func() error {
		c, err := net.ListenPacket("ip4:112", w.x.IPv4.String())
		if err != nil {
			return err
		}
		defer c.Close()
		p := ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName(w.x.Iface)
		if err != nil {
			return err
		}
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := p.SetMulticastTTL(ttl); err != nil {
			return err
		}
		b := raw
		if b == nil {
			if b, err = vrrp.Encode(nil, &a, w.x.IPv4, vrrp.GroupV4, vrrp.EncodeOptions{}); err != nil {
				return err
			}
		}
		_, err = p.WriteTo(b, nil, &net.IPAddr{IP: vrrp.GroupV4.AsSlice()})
		return err
	})
	if err != nil {
		w.t.Fatalf("spoof from x: %v", err)
	}
}
