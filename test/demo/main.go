// Command demo is `make demo` until the lab lands: in throwaway network
// namespaces it runs keepalived (Debian's package) as VRRP master and
// leasehold as backup, stops keepalived gracefully, restarts it, kills it
// with -9, and prints what the invariant checkers saw. Needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leasehold/leasehold/test/keepalivedtest"
	"github.com/leasehold/leasehold/test/netlab"
)

func main() {
	bin := flag.String("bin", "bin/leasehold", "leasehold binary")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	netlab.CleanupStale(netlab.DefaultStateDir)
	lab, err := netlab.New(netlab.Options{Hosts: []string{"ka", "lh"}, Client: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		lab.Down(dctx)
		say("lab %s removed", lab.ID())
	}()
	if err := lab.Up(ctx); err != nil {
		return err
	}
	ka, lh, client := lab.Host("ka"), lab.Host("lh"), lab.Host(netlab.ClientName)
	vip := lab.VIP4()
	say("lab %s up: keepalived on ka (%s), leasehold on lh (%s), client (%s), VIP %s", lab.ID(), ka.IPv4, lh.IPv4, client.IPv4, vip)

	tb := lab.Timebase()
	mon := netlab.NewAddrMonitor(tb, vip, ka, lh)
	arp := netlab.NewARPProber(lab, vip)
	tcp := netlab.NewTCPProber(tb, client, netip.AddrPortFrom(vip, 8080))
	for _, c := range []interface {
		Run(context.Context) error
		Ready() <-chan struct{}
	}{mon, arp, netlab.NewResponder(ka, 8080), netlab.NewResponder(lh, 8080), tcp} {
		go c.Run(ctx)
		<-c.Ready()
	}

	kaConf := keepalivedtest.Config{Instances: []keepalivedtest.Instance{{
		Name: "VI_1", State: "MASTER", Interface: ka.Iface, VRID: 51, Priority: 120,
		AdvertInt: time.Second, Version: 2, AuthPass: "1111", VIPs: []netip.Prefix{netip.PrefixFrom(vip, 24)},
	}}}
	k, err := keepalivedtest.Run(ctx, ka, kaConf)
	if err != nil {
		return err
	}
	say("keepalived started: MASTER, priority 120, VRRPv2 advert_int 1, auth PASS")
	waitHolder(mon, tb, "ka", 10*time.Second)
	say("ka holds the VIP")

	dir, err := os.MkdirTemp("", "leasehold-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "leasehold.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`node: {name: lh}
quorum: {backend: none}
status: {listen: "unix:%s/lh.sock"}
state_dir: %s/state
vrrp_instance:
  VI_1:
    interface: %s
    virtual_router_id: 51
    priority: 100
    advert_int: 1
    authentication: {auth_type: PASS, auth_pass: "1111"}
    virtual_ipaddress: [%s/24]
`, dir, dir, lh.Iface, vip)), 0o644)
	cmd := lh.Command(ctx, bin, "run", "-c", conf)
	logf, _ := os.Create(filepath.Join(dir, "leasehold.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if _, err := lh.StartCmd(cmd); err != nil {
		return err
	}
	say("leasehold started: BACKUP, priority 100, quorum none (plain VRRP: it warns it has no split-brain protection)")
	time.Sleep(5 * time.Second)
	say("after 5 s: VIP holders %v (leasehold stays backup while keepalived advertises)", mon.Holders(tb.Now()))

	t0 := tb.Now()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	k.Stop(sctx)
	scancel()
	say("keepalived stopped with SIGTERM (it sends priority 0)")
	t1 := waitHolder(mon, tb, "lh", 10*time.Second)
	say("lh added the VIP %v after the stop (priority-0 advert → backup waits only its skew, ~0.6 s)", t1.Sub(t0).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	report("graceful stop", mon, arp, tcp, t0)

	if k, err = keepalivedtest.Run(ctx, ka, kaConf); err != nil {
		return err
	}
	say("keepalived restarted with priority 120: it preempts leasehold")
	waitHolder(mon, tb, "ka", 15*time.Second)
	time.Sleep(2 * time.Second)
	say("VIP holders %v", mon.Holders(tb.Now()))

	t0 = tb.Now()
	k.Kill9()
	say("keepalived killed with -9 (nothing sent; its VIP stays configured)")
	t1 = waitHolder(mon, tb, "lh", 15*time.Second)
	say("lh added the VIP %v after the kill (master-down interval 3 × 1 s + skew)", t1.Sub(t0).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	report("kill -9", mon, arp, tcp, t0)
	fmt.Println()
	fmt.Println("The kill -9 row shows keepalived's split brain: the dead master keeps the VIP while the")
	fmt.Println("backup takes it too. quorum none reproduces it by design; the lease-gated mode with the")
	fmt.Println("kernel fence (etcd or raft quorum) is what removes it — see README.md, Status.")
	return nil
}

func waitHolder(mon *netlab.AddrMonitor, tb netlab.Timebase, host string, timeout time.Duration) netlab.Stamp {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, h := range mon.Holders(tb.Now()) {
			if h == host {
				evs := mon.Events()
				for i := len(evs) - 1; i >= 0; i-- {
					if evs[i].Host == host && evs[i].Added {
						return evs[i].At
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	say("%s did not get the VIP within %v", host, timeout)
	return tb.Now()
}

func report(what string, mon *netlab.AddrMonitor, arp *netlab.ARPProber, tcp *netlab.TCPProber, fault netlab.Stamp) {
	var dual time.Duration
	for _, iv := range mon.DualIntervals() {
		if !iv.End.Before(fault) {
			dual += iv.End.Sub(maxStamp(iv.Start, fault))
		}
	}
	dualARP := 0
	for _, r := range arp.DualRounds() {
		if !r.At.Before(fault) {
			dualARP++
		}
	}
	var outage time.Duration
	for _, iv := range tcp.Outages() {
		if !iv.End.Before(fault) {
			outage += iv.End.Sub(maxStamp(iv.Start, fault))
		}
	}
	holders := strings.Join(mon.Holders(mon.HolderIntervals()[len(mon.HolderIntervals())-1].End), ",")
	fmt.Printf("\n  %-14s dual holder (netlink) %-10v ARP rounds with 2 MACs %-4d client outage %-10v holders now [%s]\n\n",
		what, dual.Round(time.Millisecond), dualARP, outage.Round(time.Millisecond), holders)
}

func maxStamp(a, b netlab.Stamp) netlab.Stamp {
	if a.Before(b) {
		return b
	}
	return a
}
