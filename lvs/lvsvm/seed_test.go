package lvsvm_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// seed003Director is a single director's configuration around seed 003's
// virtual server (testdata/seed-003-master.yaml): the seed's VRRP
// instance (interface renamed to the VM's eth0; no lease, one director,
// so the table is kept as keepalived keeps it, lvs_mode all).
const seed003Director = `node: {name: director1}
# backend none because this is one director in a test VM, no pair
quorum: {backend: none}
vrrp_instance:
  VI_1:
    state: MASTER
    interface: eth0
    virtual_router_id: 51
    priority: 101
    advert_int: 1
    virtual_ipaddress: [192.168.1.99]
lvs_mode: all
`

// seed003RealServers makes the real-server VM seed 003's two real
// servers, 192.168.1.13 and .14 (LVS-DR), each with an httpd on port 80
// for its checks, and one on VIP:80 for the traffic.
var seed003RealServers = drRealServers("192.168.1.99", "192.168.1.13", "192.168.1.14") + "httpd -p 192.168.1.14:80 -h /var/www\n"

// ipvsTable is `ipvsadm -Ln` reduced to what configuration decides: each
// service line as ipvsadm prints it, then its real servers (address,
// forwarding, weight) sorted, without the connection counters.
func ipvsTable(out string) []string {
	var table, reals []string
	flush := func() {
		slices.Sort(reals)
		table = append(table, reals...)
		reals = nil
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			reals = append(reals, "  -> "+strings.Join(f[1:4], " "))
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM"):
			flush()
			table = append(table, strings.Join(f, " "))
		}
	}
	flush()
	return table
}

// TestSeedVirtualServerInAVM: seed 003's virtual server (lc, DR,
// persistence 50, two real servers of weight 1 with TCP_CHECKs) as
// leasehold's YAML gives the director VM the same kernel table as
// keepalived 2.2.7 reading the seed's own keepalived.conf, unchanged, in
// the same VM — the table the seed shows — and serves it: a client's
// connections through the VIP are all answered by the real servers and,
// persistence holding, all scheduled to one of them.
//
// The YAML (testdata/seed-003-master.yaml) is written by hand and must
// equal the importer's output for the seed's virtual_server block. Seed
// 004's virtual_server (192.168.150.100 80 with HTTP_GET checks) is not
// in that seed's text beyond its first line (the blog's code blocks were
// flattened to one line each), so it has no YAML here.
func TestSeedVirtualServerInAVM(t *testing.T) {
	img := needKeepalivedImage(t)
	vsYAML, err := os.ReadFile("testdata/seed-003-master.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seedConf, err := os.ReadFile("../../config/keepalived/testdata/lvs-003-master.conf")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	share := t.TempDir()
	for name, body := range map[string][]byte{"keepalived.conf": seedConf, "leasehold.yaml": append([]byte(seed003Director), vsYAML...)} {
		if err := os.WriteFile(filepath.Join(share, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, r, segment := directorAndRealServer(ctx, t, img, share, "192.168.1.11/24", "lh.ip0=192.168.1.13/24")
	mustExec(ctx, t, r, seed003RealServers)

	// keepalived's checker alone (-C): the seed's VRRP part does not run
	// (its interface enp0s3 is not this VM's), its table does.
	p := startDirector(ctx, t, d, share, "keepalived", []string{keepalivedBin, "-C", "-n", "-l", "-f", "/share/keepalived.conf"}, 2)
	keepalivedTable := ipvsTable(mustExec(ctx, t, d, "ipvsadm -Ln"))
	stopDirector(ctx, t, d, "keepalived", p)

	p = startDirector(ctx, t, d, share, "leasehold", []string{"/usr/local/bin/leasehold", "run", "-c", "/share/leasehold.yaml"}, 2)
	leaseholdTable := ipvsTable(mustExec(ctx, t, d, "ipvsadm -Ln"))
	t.Logf("keepalived's table from the seed:\n%s\nleasehold's from the YAML:\n%s", strings.Join(keepalivedTable, "\n"), strings.Join(leaseholdTable, "\n"))
	// The seed's own `ipvsadm -Ln` (counters left out).
	seedTable := []string{"TCP 192.168.1.99:80 lc persistent 50", "  -> 192.168.1.13:80 Route 1", "  -> 192.168.1.14:80 Route 1"}
	if !slices.Equal(keepalivedTable, seedTable) {
		t.Errorf("keepalived's table %q, the seed shows %q", keepalivedTable, seedTable)
	}
	if !slices.Equal(leaseholdTable, keepalivedTable) {
		t.Errorf("leasehold's table %q differs from keepalived's %q", leaseholdTable, keepalivedTable)
	}

	// Traffic through the VIP once leasehold's VRRP instance holds it.
	for start := time.Now(); !strings.Contains(mustExec(ctx, t, d, "ip -4 addr show dev eth0"), "192.168.1.99/"); {
		if time.Since(start) > time.Minute {
			t.Fatal("the director does not hold the VIP within 1 min")
		}
		time.Sleep(300 * time.Millisecond)
	}
	c := startClientOf(ctx, t, segment, map[string]string{directorMAC: "director1", rsMAC: "rs"}, time.Second,
		netip.MustParseAddr("192.168.1.99"), netip.MustParsePrefix("192.168.1.250/24"))
	time.Sleep(4 * time.Second)
	c.stop()
	var ok, failed int
	for _, s := range c.tcp.Samples() {
		switch {
		case s.OK() && s.Node == "rs":
			ok++
		case !s.OK():
			failed++
		default:
			t.Errorf("a connection answered by %q, not a real server", s.Node)
		}
	}
	conns := kernelConns(ctx, t, d)
	a, b := conns["192.168.1.13:80"], conns["192.168.1.14:80"]
	t.Logf("client: %d connections answered by the real servers, %d failed; the kernel scheduled %d to .13, %d to .14", ok, failed, a, b)
	if ok == 0 || failed > ok/10 { // a few lost to a starved guest (seen: 3 of 62 at load 15)
		t.Errorf("client through the VIP: %d answered, %d failed", ok, failed)
	}
	if (a == 0) == (b == 0) {
		t.Errorf("persistence_timeout 50: one client's connections should all go to one real server, got %d and %d", a, b)
	}
	if err := d.Signal(ctx, p, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
