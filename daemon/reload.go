package daemon

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/vrrp"
)

// Reloadable is what a reload (SIGHUP) may change without a restart: today
// the priority of instances no health tracker owns. Everything else in the
// file must be unchanged, or the reload is refused as a whole, naming the
// keys that changed.
type Reloadable struct {
	// Priorities by instance name.
	Priorities map[string]int
}

// Reloadable returns the plan's reloadable subset.
func (p *Plan) Reloadable() Reloadable {
	r := Reloadable{Priorities: map[string]int{}}
	for name, ic := range p.Config.Instance {
		r.Priorities[name] = ic.Priority
	}
	return r
}

// fixed renders one part of the file with its reloadable values cleared,
// so two plans that differ only in them render alike.
func fixed(v any) []byte {
	b, err := yaml.Marshal(v)
	if err != nil {
		return []byte(err.Error())
	}
	return b
}

// restartKeys names the parts of next that differ from cur outside the
// reloadable subset.
func restartKeys(cur, next *config.Config) []string {
	var out []string
	for _, sec := range []struct {
		key  string
		a, b any
	}{{"node", cur.Node, next.Node}, {"quorum", cur.Quorum, next.Quorum}, {"fencing", cur.Fencing, next.Fencing},
		{"status", cur.Status, next.Status}, {"state_dir", cur.StateDir, next.StateDir}, {"vrrp_script", cur.Script, next.Script},
		{"vrrp_sync_group", cur.Sync, next.Sync}, {"lvs_mode", cur.LVSMode, next.LVSMode},
		{"virtual_server_group", cur.VirtualServerGroup, next.VirtualServerGroup}, {"virtual_server", cur.VirtualServer, next.VirtualServer},
		{"lvs_sync_daemon", cur.LVSSyncDaemon, next.LVSSyncDaemon}} {
		if !bytes.Equal(fixed(sec.a), fixed(sec.b)) {
			out = append(out, sec.key+" changed: needs a restart")
		}
	}
	names := map[string]bool{}
	for n := range cur.Instance {
		names[n] = true
	}
	for n := range next.Instance {
		names[n] = true
	}
	for _, n := range sortedNames(names) {
		a, b := cur.Instance[n], next.Instance[n]
		switch {
		case a == nil:
			out = append(out, fmt.Sprintf("vrrp_instance.%s added: needs a restart", n))
		case b == nil:
			out = append(out, fmt.Sprintf("vrrp_instance.%s removed: needs a restart", n))
		default:
			a2, b2 := *a, *b
			a2.Priority, b2.Priority = 0, 0
			if !bytes.Equal(fixed(a2), fixed(b2)) {
				out = append(out, fmt.Sprintf("vrrp_instance.%s: only priority can change without a restart", n))
				continue
			}
			if a.Priority == b.Priority {
				continue
			}
			if len(a.TrackScript)+len(a.Tracks) > 0 {
				out = append(out, fmt.Sprintf("vrrp_instance.%s.priority: tracked by health checks: needs a restart", n))
			} else if a.Priority == 255 || b.Priority == 255 {
				out = append(out, fmt.Sprintf("vrrp_instance.%s.priority: to or from 255 (address owner) needs a restart", n))
			}
		}
	}
	return out
}

// Reload applies next, a plan built from the re-read file (Load), to the
// running daemon: its reloadable subset in place, when nothing else
// changed. Otherwise nothing changes and refused names every key that needs
// a restart.
func (d *Daemon) Reload(next *Plan) (applied, refused []string) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if refused = restartKeys(d.cfg, next.Config); len(refused) > 0 {
		return nil, refused
	}
	cur, want := d.plan.Reloadable(), next.Reloadable()
	for _, name := range sortedNames(want.Priorities) {
		prio := want.Priorities[name]
		if cur.Priorities[name] == prio {
			continue
		}
		for _, in := range d.insts {
			if in.Config().Name == name {
				in.Inject(vrrp.PriorityChanged{Priority: uint8(prio)})
			}
		}
		d.cfg.Instance[name].Priority = prio
		applied = append(applied, fmt.Sprintf("vrrp_instance.%s.priority = %d", name, prio))
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
	return applied, nil
}
