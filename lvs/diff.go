package lvs

import (
	"fmt"
	"net/netip"
	"slices"
)

// OpKind is one kernel change.
type OpKind uint8

const (
	AddService OpKind = iota
	UpdateService
	AddDest
	UpdateDest
	DelDest
	DelService
)

func (k OpKind) String() string {
	return [...]string{"add service", "update service", "add real server", "update real server",
		"delete real server", "delete service"}[k]
}

// Op is one change to the kernel's table.
type Op struct {
	Kind    OpKind
	Service Virtual // the desired service (DelService: the kernel's)
	Dest    Dest
}

func (o Op) String() string {
	switch o.Kind {
	case AddDest, UpdateDest, DelDest:
		return fmt.Sprintf("%s %s (weight %d, %s) in %s", o.Kind, o.Dest.Addr, o.Dest.Weight, o.Dest.Forward, o.Service.Key)
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Service.Key)
}

// Diff lists the changes that turn the kernel's table (actual) into the
// desired one: services managed by this node (managed reports which; the
// kernel's other services are never touched) that are not desired are
// deleted; desired ones are added or updated, and their real servers
// made exactly the desired ones. Additions come first, deletions last, so
// a server moving between services never leaves a service empty longer
// than needed. Diff of a table against itself is empty.
func Diff(desired, actual []Virtual, managed func(Key) bool) []Op {
	have := make(map[Key]Virtual, len(actual))
	for _, v := range actual {
		have[v.Key] = v
	}
	want := make(map[Key]bool, len(desired))
	var adds, dels []Op
	for _, d := range desired {
		want[d.Key] = true
		a, ok := have[d.Key]
		if !ok {
			adds = append(adds, Op{Kind: AddService, Service: d})
			for _, dst := range d.Dests {
				adds = append(adds, Op{Kind: AddDest, Service: d, Dest: dst})
			}
			continue
		}
		if a.Scheduler != d.Scheduler || a.Timeout != d.Timeout || a.Netmask != d.Netmask {
			adds = append(adds, Op{Kind: UpdateService, Service: d})
		}
		cur := make(map[netip.AddrPort]Dest, len(a.Dests))
		for _, x := range a.Dests {
			cur[x.Addr] = x
		}
		seen := make(map[netip.AddrPort]bool, len(d.Dests))
		for _, dst := range d.Dests {
			seen[dst.Addr] = true
			x, ok := cur[dst.Addr]
			switch {
			case !ok:
				adds = append(adds, Op{Kind: AddDest, Service: d, Dest: dst})
			case x != dst:
				adds = append(adds, Op{Kind: UpdateDest, Service: d, Dest: dst})
			}
		}
		for _, x := range a.Dests {
			if !seen[x.Addr] {
				dels = append(dels, Op{Kind: DelDest, Service: d, Dest: x})
			}
		}
	}
	for _, a := range actual {
		if !want[a.Key] && managed(a.Key) {
			dels = append(dels, Op{Kind: DelService, Service: a})
		}
	}
	slices.SortStableFunc(dels, func(x, y Op) int { return int(x.Kind) - int(y.Kind) })
	return append(adds, dels...)
}
