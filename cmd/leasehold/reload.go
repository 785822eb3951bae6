package main

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/vrrp"
)

// reload re-reads the configuration file (SIGHUP). It applies what can
// change safely in place — an instance's priority, when no health tracker
// owns it — and refuses everything else with a message naming the key; the
// running configuration then stays as it was. It returns what it applied
// and what it refused.
func (d *daemon) reload(path string) (applied, refused []string, err error) {
	next, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	cur := d.cfg
	for _, sec := range []struct {
		name string
		a, b any
	}{{"node", cur.Node, next.Node}, {"quorum", cur.Quorum, next.Quorum}, {"fencing", cur.Fencing, next.Fencing},
		{"status", cur.Status, next.Status}, {"state_dir", cur.StateDir, next.StateDir}, {"vrrp_script", cur.Script, next.Script}} {
		if !reflect.DeepEqual(sec.a, sec.b) {
			refused = append(refused, sec.name+" changed: needs a restart")
		}
	}
	names := map[string]bool{}
	for n := range cur.Instance {
		names[n] = true
	}
	for n := range next.Instance {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	type change struct {
		name string
		prio int
	}
	var changes []change
	for _, n := range sorted {
		a, b := cur.Instance[n], next.Instance[n]
		switch {
		case a == nil:
			refused = append(refused, fmt.Sprintf("vrrp_instance.%s added: needs a restart", n))
			continue
		case b == nil:
			refused = append(refused, fmt.Sprintf("vrrp_instance.%s removed: needs a restart", n))
			continue
		}
		a2, b2 := *a, *b
		a2.Priority, b2.Priority = 0, 0
		if !reflect.DeepEqual(a2, b2) {
			refused = append(refused, fmt.Sprintf("vrrp_instance.%s: only priority can change without a restart", n))
			continue
		}
		if a.Priority == b.Priority {
			continue
		}
		if len(a.TrackScript)+len(a.Tracks) > 0 {
			refused = append(refused, fmt.Sprintf("vrrp_instance.%s.priority: tracked by health checks: needs a restart", n))
			continue
		}
		if a.Priority == 255 || b.Priority == 255 {
			refused = append(refused, fmt.Sprintf("vrrp_instance.%s.priority: to or from 255 (address owner) needs a restart", n))
			continue
		}
		changes = append(changes, change{n, b.Priority})
	}
	if len(refused) > 0 {
		return nil, refused, nil
	}
	for _, c := range changes {
		for _, in := range d.insts {
			if in.Config().Name == c.name {
				in.Inject(vrrp.PriorityChanged{Priority: uint8(c.prio)})
			}
		}
		d.cfg.Instance[c.name].Priority = c.prio
		applied = append(applied, fmt.Sprintf("vrrp_instance.%s.priority = %d", c.name, c.prio))
	}
	// The priority recorded with the lease: a group's highest member.
	for _, g := range d.groups {
		members := []string{g.Name()}
		if sg := d.cfg.Sync[g.Name()]; sg != nil {
			members = sg.Group
		}
		prio := 0
		for _, m := range members {
			if ic := d.cfg.Instance[m]; ic != nil {
				prio = max(prio, ic.Priority)
			}
		}
		g.SetPriority(prio)
	}
	return applied, nil, nil
}
