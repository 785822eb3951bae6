package lvsvm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/wire"
	"github.com/leasehold/leasehold/lvs"
)

// directorYAML is a single director's configuration: seed 003's
// virtual server (port 80) with fast checks, forwarding by kind to real
// servers rs1 and rs2, on a plain VRRP instance (quorum none: one
// director; the lease-gated pair is the VM lab's).
func directorYAML(kind, rs1, rs2 string) string {
	return `node: {name: d1}
quorum: {backend: none}
vrrp_instance:
  VI_1:
    interface: eth0
    state: MASTER
    virtual_router_id: 51
    priority: 150
    advert_int: 1
    virtual_ipaddress: [10.66.0.100/24]
lvs_mode: all
` + virtualServerYAML(kind, rs1, rs2)
}

// virtualServerYAML is the virtual server of the directors' tests.
func virtualServerYAML(kind, rs1, rs2 string) string {
	return fmt.Sprintf(`virtual_server:
  - ip: 10.66.0.100
    port: 80
    follow: VI_1
    delay_loop: 1
    lb_algo: rr
    lb_kind: %s
    real_server:
      - {ip: %s, TCP_CHECK: {connect_timeout: 1, retry: 1, delay_before_retry: 1}}
      - {ip: %s, TCP_CHECK: {connect_timeout: 1, retry: 1, delay_before_retry: 1}}
`, kind, rs1, rs2)
}

// forwarding is how one test's real servers are reached.
type forwarding struct {
	kind     string
	rs1, rs2 string // the real servers' addresses (one VM carries both)
	// rsAppend is the real-server VM's kernel command line; rsSetup
	// prepares it (the second real server's httpd is started apart, to
	// be stopped); directorSetup prepares the director.
	rsAppend, rsSetup, directorSetup string
	// answeredBy is the machine whose MAC answers the client: the real
	// server's (DR) or the director's (NAT).
	answeredBy string
	// refusedWhileDetecting: connections scheduled to a stopped real
	// server are refused until it leaves the table (NAT: the same httpd
	// serves checks and traffic).
	refusedWhileDetecting bool
}

// LVS-DR: both real servers (10.66.0.11 and .12) on the VIP's subnet and,
// as DR wants, the VIP on lo without answering ARP for it. One httpd on
// VIP:80 answers the balanced traffic, one per real server address its
// checks, so stopping one of those fails that real server's checks alone.
var dr = forwarding{kind: "DR", rs1: "10.66.0.11", rs2: "10.66.0.12", rsAppend: "lh.ip0=10.66.0.11/24", answeredBy: "rs",
	rsSetup: drRealServers("10.66.0.100", "10.66.0.11", "10.66.0.12")}

// drRealServers is the script that makes the real-server VM (at rs1/24)
// also rs2 and an LVS-DR real server of vip (on lo, no ARP for it), with
// an httpd on vip:80 and one on rs1:80 (rs2's is the test's to start).
func drRealServers(vip, rs1, rs2 string) string {
	return fmt.Sprintf(`set -e
ip addr add %[3]s/24 dev eth0
ip addr add %[1]s/32 dev lo
for k in all eth0; do
  echo 1 > /proc/sys/net/ipv4/conf/$k/arp_ignore
  echo 2 > /proc/sys/net/ipv4/conf/$k/arp_announce
done
mkdir -p /var/www
echo rs > /var/www/index.html
httpd -p %[1]s:80 -h /var/www
httpd -p %[2]s:80 -h /var/www
`, vip, rs1, rs2)
}

// LVS-NAT on one segment: the real servers in a subnet of their own
// (10.67.0.0/24) routed through the director (10.67.0.1), which forwards
// and sends no ICMP redirects; each real server's httpd answers both its
// checks and its share of the traffic.
var nat = forwarding{kind: "NAT", rs1: "10.67.0.11", rs2: "10.67.0.12", rsAppend: "lh.ip0=10.67.0.11/24 lh.gw0=10.67.0.1",
	answeredBy: "d1", refusedWhileDetecting: true,
	rsSetup: `set -e
ip addr add 10.67.0.12/24 dev eth0
mkdir -p /var/www
echo rs > /var/www/index.html
httpd -p 10.67.0.11:80 -h /var/www
`,
	directorSetup: `set -e
ip addr add 10.67.0.1/24 dev eth0
echo 1 > /proc/sys/net/ipv4/ip_forward
for k in all eth0; do echo 0 > /proc/sys/net/ipv4/conf/$k/send_redirects; done
`}

const statusSocket = "/run/leasehold/leasehold.sock"

// directorStatus reads the director's status through its VM's agent.
func directorStatus(ctx context.Context, v *vm.VM) (*lvs.Status, error) {
	code, body, err := v.HTTP(ctx, statusSocket, "GET", "/status", nil)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("status: %d %v", code, err)
	}
	var doc daemon.StatusDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if doc.LVS == nil || len(doc.LVS.VirtualServers) != 1 {
		return nil, fmt.Errorf("no LVS status: %s", body)
	}
	return doc.LVS, nil
}

// inTable reports the real servers the director's status puts in the
// table (weight ≥ 0).
func inTable(st *lvs.Status) []string {
	var out []string
	for _, r := range st.VirtualServers[0].RealServers {
		if r.TableWeight >= 0 {
			out = append(out, r.Addr)
		}
	}
	return out
}

var connsRe = regexp.MustCompile(`(?m)^\s+->\s+(\S+)\s+(\d+)`)

// kernelConns reads `ipvsadm -Ln --stats` in the director: connections
// scheduled per real server, as the kernel counts them.
func kernelConns(ctx context.Context, t *testing.T, v *vm.VM) map[string]int {
	t.Helper()
	out, rc, err := v.Exec(ctx, "ipvsadm -Ln --stats", 20*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("ipvsadm: rc %d %v\n%s", rc, err, out)
	}
	m := map[string]int{}
	for _, sub := range connsRe.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(sub[2])
		m[sub[1]] = n
	}
	return m
}

// waitStatus polls the director's status (every 100 ms) until cond holds
// and returns how long that took.
func waitStatus(ctx context.Context, t *testing.T, v *vm.VM, limit time.Duration, what string, cond func(*lvs.Status) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		st, err := directorStatus(ctx, v)
		if err == nil && cond(st) {
			return time.Since(start)
		}
		if err != nil {
			last = err.Error()
		} else {
			b, _ := json.Marshal(st)
			last = string(b)
		}
		if time.Since(start) > limit {
			t.Fatalf("not within %v: %s (last status: %s)", limit, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDirectorInAVM runs leasehold as an LVS director in a VM in front of
// a real-server VM, a client on the host's end of the segment, in DR and
// in NAT: the client's connections through the VIP are answered and the
// kernel balances them over both real servers; a real server whose checks
// fail leaves the kernel's table within delay_loop + retry ×
// (connect_timeout + delay_before_retry) + connect_timeout and comes back
// after it recovers; on exit the director removes its table.
func TestDirectorInAVM(t *testing.T) {
	for _, f := range []forwarding{dr, nat} {
		t.Run(f.kind, func(t *testing.T) { testDirector(t, f) })
	}
}

func testDirector(t *testing.T, f forwarding) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "leasehold.yaml"), []byte(directorYAML(f.kind, f.rs1, f.rs2)), 0o644); err != nil {
		t.Fatal(err)
	}
	d, r, mcast := directorAndRealServer(ctx, t, img, share, "10.66.0.1/24", f.rsAppend)
	mustExec(ctx, t, r, f.rsSetup)
	rs2 := []string{"/bin/busybox", "httpd", "-f", "-p", f.rs2 + ":80", "-h", "/var/www"}
	check12, err := r.Spawn(ctx, rs2, "/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, d, f.directorSetup+"mkdir -p /etc/leasehold && cp /share/leasehold.yaml /etc/leasehold/")
	daemonProc, err := d.Spawn(ctx, []string{"/usr/local/bin/leasehold", "run", "-c", "/etc/leasehold/leasehold.yaml"}, "/share/leasehold.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(share, "leasehold.log"))
			t.Logf("director log:\n%s", b)
		}
	})
	took := waitStatus(ctx, t, d, time.Minute, "both real servers in the director's table", func(st *lvs.Status) bool {
		return len(inTable(st)) == 2
	})
	t.Logf("director up with both real servers after %v", took.Round(time.Millisecond))

	// A client through the VIP: SYNs every 50 ms from the host's end of
	// the segment, answered (DR) by the real server's machine.
	c := startClient(ctx, t, mcast, map[string]string{directorMAC: "d1", rsMAC: "rs"}, time.Second)
	defer c.stop()
	probe := c.tcp

	time.Sleep(5 * time.Second)
	conns := kernelConns(ctx, t, d)
	a, b := conns[f.rs1+":80"], conns[f.rs2+":80"]
	t.Logf("kernel: connections scheduled to %s %d, to %s %d", f.rs1, a, f.rs2, b)
	if a == 0 || b == 0 || a > 2*b+2 || b > 2*a+2 {
		t.Errorf("rr does not balance: %d vs %d", a, b)
	}

	// The second real server stops: it leaves the kernel's table.
	bound := time.Second + 1*(time.Second+time.Second) + time.Second
	if err := r.Signal(ctx, check12, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	took = waitStatus(ctx, t, d, bound+10*time.Second, f.rs2+" out of the table", func(st *lvs.Status) bool {
		return strings.Join(inTable(st), ",") == f.rs1+":80"
	})
	detection := took
	t.Logf("failed real server removed after %v (bound delay_loop + retry × (connect_timeout + delay_before_retry) + connect_timeout = %v)",
		took.Round(time.Millisecond), bound)
	if took > bound+3*time.Second { // the status poll and TCG's slowness
		t.Errorf("removal took %v, bound %v", took, bound)
	}
	out, _, _ := d.Exec(ctx, "ipvsadm -Ln", 20*time.Second)
	if strings.Contains(out, f.rs2+":80") || !strings.Contains(out, f.rs1+":80") {
		t.Errorf("the kernel's table still has %s (or lost %s):\n%s", f.rs2, f.rs1, out)
	}
	before := kernelConns(ctx, t, d)
	time.Sleep(2 * time.Second)
	after := kernelConns(ctx, t, d)
	if after[f.rs2+":80"] != before[f.rs2+":80"] || after[f.rs1+":80"] <= before[f.rs1+":80"] {
		t.Errorf("new connections still go to the failed real server: before %v, after %v", before, after)
	}

	// It recovers: back in the table.
	if _, err := r.Spawn(ctx, rs2, "/dev/null"); err != nil {
		t.Fatal(err)
	}
	took = waitStatus(ctx, t, d, 15*time.Second, f.rs2+" back in the table", func(st *lvs.Status) bool { return len(inTable(st)) == 2 })
	t.Logf("recovered real server re-added after %v (%v after it was stopped)", took.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))

	c.stop()
	var ok, failed int
	others := map[string]int{}
	for _, s := range probe.Samples() {
		switch {
		case s.OK() && s.Node == f.answeredBy:
			ok++
		case s.OK():
			others[s.Node]++
		default:
			failed++
		}
	}
	t.Logf("client: %d connections answered by %s, %d failed, others %v", ok, f.answeredBy, failed, others)
	// Connections scheduled to the stopped real server fail until it
	// leaves the table (NAT): at most one a probe interval.
	allowed := ok / 20
	if f.refusedWhileDetecting {
		allowed += int(detection/(50*time.Millisecond)) + 5
	}
	if ok == 0 || len(others) > 0 || failed > allowed {
		t.Errorf("client through the VIP: %d answered by %s, %d failed (allowed %d), answered by others %v", ok, f.answeredBy, failed, allowed, others)
	}

	// On exit the director removes its table.
	if err := d.Signal(ctx, daemonProc, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		alive, err := d.Alive(ctx, daemonProc)
		if err == nil && !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leasehold did not exit within 20 s of SIGTERM")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, _, _ := d.Exec(ctx, "ipvsadm -Ln", 20*time.Second); strings.Contains(out, "10.66.0.100:80") {
		t.Errorf("table left after the director's exit:\n%s", out)
	}
}

// client is a TCP client of VIP:80 (a SYN every 50 ms) and an ARP prober
// of the VIP (every 100 ms) on the host's end of a segment.
type client struct {
	tb     netlab.Timebase
	tcp    *wire.TCPProber
	arp    *wire.ARPProber
	cancel context.CancelFunc
	wg     sync.WaitGroup
	seg    *wire.Segment
	once   sync.Once
	stopAt time.Time // when stop was called: the end of the observation
}

func startClient(ctx context.Context, t *testing.T, segment string, names map[string]string, timeout time.Duration) *client {
	t.Helper()
	return startClientOf(ctx, t, segment, names, timeout, netip.MustParseAddr("10.66.0.100"), netip.MustParsePrefix("10.66.0.250/24"))
}

// startClientOf is startClient for a VIP (port 80) of another subnet, the
// client at src.
func startClientOf(ctx context.Context, t *testing.T, segment string, names map[string]string, timeout time.Duration, vip netip.Addr, src netip.Prefix) *client {
	t.Helper()
	seg, err := wire.Open(segment)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{tb: netlab.NewTimebase(), seg: seg}
	c.tcp = wire.NewTCPProber(c.tb, seg, src, netip.AddrPortFrom(vip, 80), names)
	c.tcp.Interval, c.tcp.Timeout = 50*time.Millisecond, timeout
	c.arp = wire.NewARPProber(c.tb, seg, vip, names)
	pctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.wg.Go(func() { c.tcp.Run(pctx) })
	c.wg.Go(func() { c.arp.Run(pctx) })
	return c
}

// stop ends the probes (idempotent).
func (c *client) stop() {
	c.once.Do(func() {
		c.stopAt = time.Now()
		c.cancel()
		c.wg.Wait()
		c.seg.Close()
	})
}
