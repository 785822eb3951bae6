package fencing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table layout (see doc.go for what each rule covers).
const (
	TablePrefix = "leasehold" // every table of ours is named TablePrefix or TablePrefix-<name>
	SetManaged  = "managed"   // all VIPs this node might own: the fence applies only to them
	SetOwned    = "owned"     // armed VIPs, each with its own timeout
)

var (
	familyARP  = nftables.TableFamilyARP
	familyIPv4 = nftables.TableFamilyIPv4
	familyIPv6 = nftables.TableFamilyIPv6
)

// NFT is the nftables kernel fence. It talks netlink on one socket opened
// by NewNFT, so it acts on the network namespace of the thread that called
// NewNFT, whichever goroutine uses it later. Safe for concurrent use.
type NFT struct {
	name string
	log  *slog.Logger

	mu      sync.Mutex
	conn    *nftables.Conn
	managed map[netip.Addr]bool
}

var _ Fence = (*NFT)(nil)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.]{0,32}$`)

// TableName is the name of the tables NewNFT(name) uses.
func TableName(name string) string {
	if name == "" {
		return TablePrefix
	}
	return TablePrefix + "-" + name
}

// NewNFT returns the fence whose tables are named TableName(name) in the
// arp, ip and ip6 families. It opens a netlink socket in the calling
// thread's network namespace and touches no kernel state until Install.
func NewNFT(name string, log *slog.Logger) (*NFT, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("fencing: table name suffix %q: want up to 32 of [A-Za-z0-9_.]", name)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("%w: nftables netlink: %w", ErrUnavailable, err)
	}
	return &NFT{name: TableName(name), log: log, conn: conn, managed: map[netip.Addr]bool{}}, nil
}

// Close releases the netlink socket. The kernel state stays (on purpose:
// armed VIPs lapse on their own); call Remove first to delete it.
func (n *NFT) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conn.CloseLasting()
}

func (n *NFT) table(f nftables.TableFamily) *nftables.Table {
	return &nftables.Table{Name: n.name, Family: f}
}

func keyType(f nftables.TableFamily) nftables.SetDatatype {
	if f == familyIPv6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// sets returns the managed and owned sets of family f's table, with
// transaction-local IDs id and id+1.
func (n *NFT) sets(f nftables.TableFamily, id uint32) (managed, owned *nftables.Set) {
	t := n.table(f)
	managed = &nftables.Set{Table: t, ID: id, Name: SetManaged, KeyType: keyType(f)}
	owned = &nftables.Set{Table: t, ID: id + 1, Name: SetOwned, KeyType: keyType(f), HasTimeout: true}
	return managed, owned
}

// families are the tables that carry vip's fence.
func families(vip netip.Addr) []nftables.TableFamily {
	if vip.Is4() {
		return []nftables.TableFamily{familyARP, familyIPv4}
	}
	return []nftables.TableFamily{familyIPv6}
}

func key(vip netip.Addr) []byte { return vip.AsSlice() }

func checkVIP(vip netip.Addr) (netip.Addr, error) {
	vip = vip.Unmap()
	if !vip.IsValid() || vip.Zone() != "" || vip.IsUnspecified() {
		return vip, fmt.Errorf("fencing: bad vip %q", vip)
	}
	return vip, nil
}

// Install creates (or atomically recreates) the three tables, keeping the
// managed VIPs an earlier run left and dropping its armed ones, then
// probes whether this kernel updates element timeouts in place.
func (n *NFT) Install(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	old, err := n.readManaged()
	if err != nil {
		n.log.Warn("fencing: cannot read managed VIPs of an earlier run", "err", err)
	}
	if len(old) > 0 {
		n.log.Info("fencing: replacing tables of an earlier run", "table", n.name, "managed", len(old))
	}
	var id uint32 = 1
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4, familyIPv6} {
		t := n.table(f)
		// add+delete+add: one transaction that replaces the table whether
		// or not it exists; the packet path sees the old or the new state.
		n.conn.AddTable(t)
		n.conn.DelTable(t)
		n.conn.AddTable(t)
		managed, owned := n.sets(f, id)
		id += 2
		var elems []nftables.SetElement
		for _, a := range old {
			if slices.Contains(families(a), f) {
				elems = append(elems, nftables.SetElement{Key: key(a)})
			}
		}
		if err := n.conn.AddSet(managed, elems); err != nil {
			return n.abort(fmt.Errorf("fencing: install: %w", err))
		}
		if err := n.conn.AddSet(owned, nil); err != nil {
			return n.abort(fmt.Errorf("fencing: install: %w", err))
		}
		n.addRules(f, managed, owned)
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("%w: install %s: %w", ErrUnavailable, n.name, err)
	}
	n.managed = map[netip.Addr]bool{}
	for _, a := range old {
		n.managed[a] = true
	}
	return nil
}

// abort drops queued messages after a serialisation error.
func (n *NFT) abort(err error) error {
	_ = n.conn.Flush() // returns the stored serialisation error and clears the queue
	return err
}

// readManaged returns the VIPs in the managed sets of existing tables.
func (n *NFT) readManaged() ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4, familyIPv6} {
		tables, err := n.conn.ListTablesOfFamily(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == n.name }) {
			continue
		}
		managed, _ := n.sets(f, 0)
		elems, err := n.conn.GetSetElements(managed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, errors.Join(errs...)
}

// probeInPlace checks, with a scratch set, whether re-adding an element
// with a shorter timeout changes its expiry.
// Rule building blocks. Register 1 is the only one used.

func load(base expr.PayloadBase, off, size uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: size}
}

func eq(data ...byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

// dropUnowned loads an address and drops the packet when it is managed and
// not owned (armed).
func dropUnowned(base expr.PayloadBase, off, size uint32, managed, owned *nftables.Set) []expr.Any {
	return []expr.Any{
		load(base, off, size),
		&expr.Lookup{SourceRegister: 1, SetName: managed.Name, SetID: managed.ID},
		&expr.Lookup{SourceRegister: 1, SetName: owned.Name, SetID: owned.ID, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func (n *NFT) chain(t *nftables.Table, name string, hook nftables.ChainHook) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return n.conn.AddChain(&nftables.Chain{
		Name: name, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookRef(hook), Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
}

func (n *NFT) rule(c *nftables.Chain, exprs ...[]expr.Any) {
	n.conn.AddRule(&nftables.Rule{Table: c.Table, Chain: c, Exprs: slices.Concat(exprs...)})
}

const (
	hookARPIn  = 0 // NF_ARP_IN (linux/netfilter_arp.h)
	hookARPOut = 1 // NF_ARP_OUT
	icmpv6     = 58
	ndNS       = 135 // neighbour solicitation
	ndNA       = 136 // neighbour advertisement
)

func (n *NFT) addRules(f nftables.TableFamily, managed, owned *nftables.Set) {
	nh, th := expr.PayloadBaseNetworkHeader, expr.PayloadBaseTransportHeader
	t := n.table(f)
	switch f {
	case familyARP:
		// Ethernet/IPv4 ARP only: ptype 0x0800, hlen 6, plen 4; then
		// sender IP at 14, target IP at 24.
		ipv4ARP := []expr.Any{load(nh, 2, 2), eq(0x08, 0x00), load(nh, 4, 2), eq(6, 4)}
		in := n.chain(t, "input", hookARPIn)
		n.rule(in, ipv4ARP, dropUnowned(nh, 24, 4, managed, owned))
		out := n.chain(t, "output", hookARPOut)
		n.rule(out, ipv4ARP, dropUnowned(nh, 14, 4, managed, owned))
	case familyIPv4:
		in := n.chain(t, "input", unix.NF_INET_LOCAL_IN)
		n.rule(in, dropUnowned(nh, 16, 4, managed, owned)) // ip daddr
	case familyIPv6:
		icmp := func(typ byte) []expr.Any {
			return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq(icmpv6), load(th, 0, 1), eq(typ)}
		}
		in := n.chain(t, "input", unix.NF_INET_LOCAL_IN)
		n.rule(in, dropUnowned(nh, 24, 16, managed, owned))            // ip6 daddr
		n.rule(in, icmp(ndNS), dropUnowned(th, 8, 16, managed, owned)) // NS target
		out := n.chain(t, "output", unix.NF_INET_LOCAL_OUT)
		n.rule(out, icmp(ndNA), dropUnowned(th, 8, 16, managed, owned)) // NA target
		n.rule(out, icmp(ndNA), dropUnowned(nh, 8, 16, managed, owned)) // NA from the VIP
		n.rule(out, icmp(ndNS), dropUnowned(nh, 8, 16, managed, owned)) // NS from the VIP
	}
}

// Manage replaces the managed sets with vips in one transaction.
func (n *NFT) Manage(vips []netip.Addr) error {
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		v, err := checkVIP(v)
		if err != nil {
			return err
		}
		want[v] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4, familyIPv6} {
		managed, _ := n.sets(f, 0)
		var elems []nftables.SetElement
		for v := range want {
			if slices.Contains(families(v), f) {
				elems = append(elems, nftables.SetElement{Key: key(v)})
			}
		}
		n.conn.FlushSet(managed)
		if len(elems) > 0 {
			if err := n.conn.SetAddElements(managed, elems); err != nil {
				return n.abort(fmt.Errorf("fencing: manage: %w", err))
			}
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("fencing: manage: %w", err)
	}
	n.managed = want
	return nil
}

// Arm adds vip to the owned sets with timeout (truncated to 1 ms), or
// replaces the timeout of the element already there, atomically across the
// arp and ip tables.
func (n *NFT) Arm(vip netip.Addr, timeout time.Duration) error {
	vip, err := checkVIP(vip)
	if err != nil {
		return err
	}
	timeout = timeout.Truncate(Resolution)
	if timeout < Resolution {
		return fmt.Errorf("%w: arm %s for %v", ErrTimeout, vip, timeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.managed[vip] {
		return fmt.Errorf("%w: arm %s", ErrUnmanaged, vip)
	}
	el := []nftables.SetElement{{Key: key(vip), Timeout: timeout}}
	for _, f := range families(vip) {
		_, owned := n.sets(f, 0)
		// add (creates it if it lapsed), delete, add: one transaction, so
		// the packet path sees the old element or the new one, never none.
		// Re-adding alone is not enough: a kernel that updates timeouts in
		// place (≥ 6.10) leaves the expiry alone when the timeout value is
		// unchanged — measured here: the element lapsed once per TTL.
		errs := []error{n.conn.SetAddElements(owned, el), n.conn.SetDeleteElements(owned, el), n.conn.SetAddElements(owned, el)}
		if err := errors.Join(errs...); err != nil {
			return n.abort(fmt.Errorf("fencing: arm %s: %w", vip, err))
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("fencing: arm %s: %w", vip, err)
	}
	return nil
}

// Disarm deletes vip from the owned sets. It first adds it with a 1 ms
// timeout in the same transaction, so the delete never fails on an element
// that has already lapsed (and the arp and ip tables stay consistent).
func (n *NFT) Disarm(vip netip.Addr) error {
	vip, err := checkVIP(vip)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	el := []nftables.SetElement{{Key: key(vip), Timeout: Resolution}}
	for _, f := range families(vip) {
		_, owned := n.sets(f, 0)
		if err := errors.Join(n.conn.SetAddElements(owned, el), n.conn.SetDeleteElements(owned, el)); err != nil {
			return n.abort(fmt.Errorf("fencing: disarm %s: %w", vip, err))
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("fencing: disarm %s: %w", vip, err)
	}
	return nil
}

// Armed reads vip's remaining time back from the kernel: the least over
// the tables that carry it, ok only if it is armed in all of them.
func (n *NFT) Armed(vip netip.Addr) (time.Duration, bool, error) {
	vip, err := checkVIP(vip)
	if err != nil {
		return 0, false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	left, ok := time.Duration(1<<63-1), true
	for _, f := range families(vip) {
		_, owned := n.sets(f, 0)
		elems, err := n.conn.GetSetElements(owned)
		if err != nil {
			return 0, false, fmt.Errorf("fencing: read %s: %w", vip, err)
		}
		i := slices.IndexFunc(elems, func(e nftables.SetElement) bool { return slices.Equal(e.Key, key(vip)) })
		if i < 0 {
			ok = false
			continue
		}
		left = min(left, elems[i].Expires)
	}
	if !ok {
		return 0, false, nil
	}
	return left, true, nil
}

// Remove deletes the three tables (absent tables are fine).
func (n *NFT) Remove() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4, familyIPv6} {
		t := n.table(f)
		n.conn.AddTable(t)
		n.conn.DelTable(t)
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("fencing: remove %s: %w", n.name, err)
	}
	n.managed = map[netip.Addr]bool{}
	return nil
}

// Usable checks, in the calling thread's network namespace, that nftables
// can do what the fence needs: arp and ip tables with hooked chains and a
// set with per-element timeouts. It leaves nothing behind. A daemon that
// gets an error has only the address-lifetime layer and must use a longer
// lease TTL.
func Usable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("%w: nftables: %w", ErrUnavailable, err)
	}
	name := fmt.Sprintf("%s-probe-%d", TablePrefix, os.Getpid())
	n := &NFT{name: name, conn: c}
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4} {
		c.AddTable(n.table(f))
		managed, owned := n.sets(f, uint32(f)*2)
		if err := errors.Join(c.AddSet(managed, nil), c.AddSet(owned, []nftables.SetElement{{Key: []byte{192, 0, 2, 1}, Timeout: time.Second}})); err != nil {
			return fmt.Errorf("%w: nftables: %w", ErrUnavailable, err)
		}
		n.addRules(f, managed, owned)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("%w: nftables: %w", ErrUnavailable, err)
	}
	for _, f := range []nftables.TableFamily{familyARP, familyIPv4} {
		c.DelTable(n.table(f))
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("fencing: delete probe tables %s: %w", name, err)
	}
	return nil
}
