package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/vrrp"
)

func cmdVRRP(args []string, stdout, stderr io.Writer) int {
	const synopsis = "--iface IFACE [--count N] [--duration D] [--vrid N --auth-pass P --advert-int D]"
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, "usage: leasehold vrrp dump "+synopsis)
		return exitOK
	case len(args) == 0 || args[0] != "dump":
		fmt.Fprintln(stderr, "usage: leasehold vrrp dump "+synopsis)
		return exitUsage
	}
	fs := newFlagSet("vrrp dump", synopsis, "prints the VRRP adverts seen on IFACE, with the reason any would be dropped\n")
	iface := fs.String("iface", "", "interface to listen on (required)")
	count := fs.Int("count", 0, "stop after this many packets (0 = no limit)")
	dur := fs.Duration("duration", 0, "stop after this long (0 = until interrupted)")
	vrid := fs.Int("vrid", 0, "check adverts against this VRID (0 = show all)")
	pass := fs.String("auth-pass", "", "with --vrid: expected PASS authentication (VRRPv2)")
	interval := fs.Duration("advert-int", 0, "with --vrid: expected VRRPv2 interval")
	version := fs.Int("version", 0, "with --vrid: expected VRRP version (2 or 3)")
	six := fs.Bool("6", false, "IPv6 (VRRPv3 over IPv6) instead of IPv4")
	memberList := fs.String("members", "", "with --vrid: the group's members (comma-separated addresses, as `leasehold status` lists them); adverts from others are dropped as foreign_speaker")
	if pos, rc, ok := parseFlags(fs, args[1:], stdout, stderr); !ok {
		return rc
	} else if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if *iface == "" {
		fmt.Fprintln(stderr, "leasehold vrrp dump: --iface is required")
		return 2
	}
	var exp *vrrp.Expect
	if *vrid != 0 {
		if *vrid < 1 || *vrid > 255 {
			fmt.Fprintln(stderr, "leasehold vrrp dump: --vrid must be 1-255")
			return 2
		}
		exp = &vrrp.Expect{VRID: uint8(*vrid), Version: uint8(*version), Interval: *interval, CheckTTL: true}
		if *pass != "" {
			exp.AuthType, exp.AuthData = vrrp.AuthPass, vrrp.PassAuth(*pass)
		}
	}
	var members []netip.Addr
	if *memberList != "" {
		if exp == nil {
			fmt.Fprintln(stderr, "leasehold vrrp dump: --members needs --vrid")
			return 2
		}
		for _, m := range strings.Split(*memberList, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(m))
			if err != nil {
				fmt.Fprintf(stderr, "leasehold vrrp dump: --members: %v\n", err)
				return 2
			}
			members = append(members, a)
		}
	}
	src := netip.IPv4Unspecified()
	if *six {
		src = netip.IPv6Unspecified()
	}
	conn, err := vrrp.Listen(*iface, *six, vrrp.ConnOptions{Multicast: true, Src: src})
	if err != nil {
		fmt.Fprintf(stderr, "leasehold vrrp dump: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	d := &dumper{out: stdout, exp: exp, limit: *count, members: members}
	context.AfterFunc(ctx, func() { conn.Close() })
	buf := make([]byte, 2048)
	adv := vrrp.Advert{Addrs: make([]netip.Addr, 0, 16)}
	for ctx.Err() == nil && !d.done() {
		n, meta, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		d.packet(buf[:n], meta, &adv, time.Now())
	}
	d.summary()
	return 0
}

// dumper prints one line per packet and counts drops by reason.
type dumper struct {
	out   io.Writer
	exp   *vrrp.Expect
	limit int
	// members: with exp, the group's members (none: anyone may speak).
	members []netip.Addr

	mu    sync.Mutex
	seen  int
	ok    int
	drops vrrp.DropCounters
}

func (d *dumper) done() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.limit > 0 && d.seen >= d.limit
}

func (d *dumper) packet(b []byte, meta vrrp.PacketMeta, a *vrrp.Advert, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen++
	head := fmt.Sprintf("%s %s > %s ttl %d len %d", now.Format("15:04:05.000000"), meta.Src, meta.Dst, meta.TTL, len(b))
	if r := vrrp.Decode(b, meta.Src, meta.Dst, a); r != vrrp.DropNone {
		d.drops.Inc(r)
		fmt.Fprintf(d.out, "%s DROP %s\n", head, r)
		return
	}
	line := fmt.Sprintf("%s VRRPv%d vrid %d prio %d int %v", head, a.Version, a.VRID, a.Priority, a.Interval)
	if a.Version == 2 {
		switch a.AuthType {
		case vrrp.AuthPass:
			line += fmt.Sprintf(" auth PASS %q", strings.TrimRight(string(a.AuthData[:]), "\x00"))
		case vrrp.AuthNone:
			line += " auth none"
		default:
			line += fmt.Sprintf(" auth type %d", a.AuthType)
		}
	} else {
		line += " cksum " + a.ChecksumMode.String()
	}
	addrs := make([]string, len(a.Addrs))
	for i, x := range a.Addrs {
		addrs[i] = x.String()
	}
	line += " addrs " + strings.Join(addrs, ",")
	if d.exp != nil {
		e := *d.exp
		if e.Version == 0 {
			e.Version = a.Version
		}
		if a.VRID == e.VRID && len(d.members) > 0 && !slices.Contains(d.members, meta.Src.WithZone("")) {
			d.drops.Inc(vrrp.DropForeignSpeaker)
			fmt.Fprintf(d.out, "%s DROP %s\n", line, vrrp.DropForeignSpeaker)
			return
		}
		if r := e.Check(a, meta.TTL, meta.Dst.IsMulticast()); r != vrrp.DropNone {
			d.drops.Inc(r)
			fmt.Fprintf(d.out, "%s DROP %s\n", line, r)
			return
		}
	}
	d.ok++
	fmt.Fprintln(d.out, line)
}

func (d *dumper) summary() {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%d packets, %d accepted\n", d.seen, d.ok)
	snap := d.drops.Snapshot()
	keys := make([]string, 0, len(snap))
	for k, v := range snap {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(d.out, "  dropped %-20s %d\n", k, snap[k])
	}
}
