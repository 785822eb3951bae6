// Package fencing is the kernel fence: it makes the kernel withdraw a VIP
// on its own when the daemon stops refreshing it (kill -9, SIGSTOP, a
// stuck process), before the lease can pass to another node. It also
// holds the watchdog driver and the peer-fence hook runner.
//
// # nftables layer (NFT)
//
// Tables named TableName(name) ("leasehold" or "leasehold-<name>") in the
// arp, ip and ip6 families, each with a set "managed" (every VIP this node
// might own) and a set "owned" (flags timeout: the armed VIPs, each with
// its own millisecond timeout). Base chains, type filter, priority filter
// (0), policy accept. A packet is dropped when the address below is in
// managed and not in owned ("fenced"):
//
//   - arp input:   ARP (ptype 0x0800, hlen 6, plen 4) whose target IP is
//     fenced: the kernel does not answer requests for the VIP nor learn from
//     them. (Sender IP is deliberately not matched on input: that would drop
//     the real owner's replies and make the VIP unreachable from this node.)
//   - arp output:  ARP whose sender IP is fenced: no reply, gratuitous ARP or
//     request from the kernel carries the VIP.
//   - ip input:    IPv4 whose destination is fenced (locally delivered only;
//     forwarded traffic is not touched). ICMP, TCP (new and established), UDP.
//   - ip6 input:   IPv6 whose destination is fenced; ICMPv6 neighbour
//     solicitations (135) whose target (ICMPv6 offset 8) is fenced, whatever
//     their destination (solicited-node multicast included).
//   - ip6 output:  neighbour advertisements (136) whose target is fenced, and
//     NS/NA whose IPv6 source is fenced (receivers would learn our MAC for
//     the VIP from them). Extension headers are handled (meta l4proto, th).
//
// Guaranteed (tested in network namespaces on Linux 6.x): a managed VIP
// that is not armed, or whose arming lapsed, gets no ARP reply / NA and
// accepts no IP traffic, whether or not the process still runs; an armed
// one passes; unmanaged addresses are never affected. The kernel expires
// an element at jiffy resolution (measured: ARP replies for a VIP armed for
// 300 ms stop 300–420 ms after Arm, probe granularity of ~120 ms included). Arm
// replaces an element's remaining time (in place on Linux ≥ 6.10, probed
// at Install; otherwise by add+delete+add in one transaction). Every
// change is one netlink transaction: the packet path sees the old or the
// new state, and the arp and ip tables of an IPv4 VIP change together.
// Install replaces an earlier run's tables atomically, keeping its managed
// VIPs (still fenced) and dropping its armings; Remove deletes the tables.
// A timeout under 1 ms is refused (0 would mean "no timeout").
//
// Refresh adds the clock discipline: timeout = deadline − now − margin; if
// the clock read after the kernel call shows deadline − margin passed, or
// the call took longer than margin, the VIP is disarmed and ErrLate
// returned. When Refresh returns nil the arming lapses by the deadline.
//
// Not guaranteed / not covered: frames sent by packet sockets (the daemon's
// own gratuitous ARP through mdlayher/arp, arping, any AF_PACKET sender)
// bypass the arp family hooks: the daemon must check its deadline before
// sending them (a frozen daemon sends nothing). Outgoing IPv4/IPv6 from the
// VIP other than ND is not dropped (replies cannot arise once input is
// dropped, but a local process may still send from the address). Non
// Ethernet/IPv4 ARP is not matched. Another process with CAP_NET_ADMIN can
// delete or flush our tables. A ruleset flush (nft flush ruleset, firewall
// reloads) removes the fence: the VIP is then unprotected until Install.
// The fence acts in the network namespace of the thread that called NewNFT.
//
// # Address-lifetime layer
//
// LifetimeFor computes the valid/preferred lifetime (whole seconds, never
// zero) with which vipaddr.Manager.Add makes the kernel remove the address
// itself before deadline − margin, allowing AddrLifetimeSlack (1.25 s) for
// the kernel's lifetime worker. ok false means no whole second fits: remove
// the address instead. Without nftables (Usable fails) this is the only
// fence, and the lease TTL must exceed lifetime + 2 s.
//
// # Watchdog
//
// Watchdog opens /dev/watchdog on Arm (starting its countdown), sets the
// timeout with WDIOC_SETTIMEOUT and refuses a driver that keeps a longer
// one, feeds on Feed, and writes the magic 'V' and closes on Disarm.
// Modes off/auto/required as in Patroni. On a path that is not a character
// device (tests) it writes the same bytes but sets no timeout, and says so.
// Not guaranteed: that the driver honours magic close (nowayout), or that
// a hardware timeout resets the machine exactly on time.
//
// # Peer-fence hooks
//
// RunHooks runs programs with package script (the runner shared with
// vrrp_script checks and notify scripts): absolute-path programs, checked
// not world-writable, not in a world-writable directory (after resolving
// symlinks) and owned by root or the daemon's user, with an environment of
// PATH and LEASEHOLD_GROUP, LEASEHOLD_EPOCH, LEASEHOLD_PREV_HOLDER,
// LEASEHOLD_PREV_ADDR only, in their own process group killed with SIGKILL
// at the timeout. A required hook's failure is returned; a best-effort one
// is logged. Not guaranteed: that a hook which escapes its process group
// (setsid) is killed.
package fencing
