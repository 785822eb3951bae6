package lvs

import "time"

// Status is the director's state for `leasehold status` and /metrics.
type Status struct {
	Mode            Mode            `json:"mode"`
	LastReconcile   time.Time       `json:"last_reconcile,omitzero"`
	LastError       string          `json:"last_error,omitempty"`
	Ops             uint64          `json:"ops"`              // kernel changes made
	ReconcileErrors uint64          `json:"reconcile_errors"` // failed passes
	VirtualServers  []ServiceStatus `json:"virtual_servers"`
}

// ServiceStatus is one virtual server.
type ServiceStatus struct {
	Name     string   `json:"name"`
	Follow   string   `json:"follow,omitempty"`
	Active   bool     `json:"active"` // desired in the kernel now
	Services []string `json:"services"`
	QuorumUp bool     `json:"quorum_up"`
	// LiveWeight is the sum of the live real servers' weights (the
	// quorum's measure).
	LiveWeight  int          `json:"live_weight"`
	RealServers []RealStatus `json:"real_servers"`
}

// RealStatus is one real server.
type RealStatus struct {
	Addr   string `json:"addr"`
	Sorry  bool   `json:"sorry,omitempty"`
	Alive  bool   `json:"alive"`
	Weight int    `json:"weight"` // configured
	// TableWeight is its weight in the desired table; -1: not in it.
	TableWeight int           `json:"table_weight"`
	Ups         uint64        `json:"ups"`   // transitions to alive
	Downs       uint64        `json:"downs"` // transitions to failed
	Checks      []CheckStatus `json:"checks,omitempty"`
}

// CheckStatus is one checker.
type CheckStatus struct {
	Kind      CheckKind `json:"kind"`
	Target    string    `json:"target,omitempty"`
	Up        bool      `json:"up"`
	Retries   int       `json:"retries"`
	OK        uint64    `json:"ok"`
	Failed    uint64    `json:"failed"`
	Last      time.Time `json:"last,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Status is a snapshot; it takes no lock across kernel calls.
func (d *Director) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{Mode: d.cfg.Mode, LastReconcile: d.last.at, Ops: d.last.ops, ReconcileErrors: d.last.errors}
	if d.last.err != nil {
		st.LastError = d.last.err.Error()
	}
	for si, s := range d.cfg.Services {
		reals := d.reals(si)
		ss := ServiceStatus{Name: s.Name, Follow: s.Follow, Active: d.active(si), QuorumUp: d.quorum[si], LiveWeight: LiveWeight(reals)}
		var table map[string]int
		if len(s.Keys) > 0 {
			table = d.inTable[s.Keys[0]]
		}
		weightIn := func(addr string) int {
			if w, ok := table[addr]; ok {
				return w
			}
			return -1
		}
		for _, k := range s.Keys {
			ss.Services = append(ss.Services, k.String())
		}
		for ri, r := range s.Reals {
			rs := RealStatus{Addr: r.Addr.String(), Alive: reals[ri].Alive, Weight: r.Weight, TableWeight: weightIn(r.Addr.String()),
				Ups: d.stats[si][ri].ups, Downs: d.stats[si][ri].downs}
			for ci, c := range r.Checks {
				cs, x := d.checks[si][ri][ci], d.stats[si][ri].checks[ci]
				ck := CheckStatus{Kind: c.Kind, Up: cs.Up, Retries: cs.Retries, OK: x.ok, Failed: x.failed, Last: x.last, LastError: x.lastErr}
				if c.Target.IsValid() && c.Kind != MiscCheck {
					ck.Target = c.Target.String()
				}
				rs.Checks = append(rs.Checks, ck)
			}
			ss.RealServers = append(ss.RealServers, rs)
		}
		if s.Sorry != nil {
			ss.RealServers = append(ss.RealServers, RealStatus{Addr: s.Sorry.Addr.String(), Sorry: true, Alive: true,
				Weight: s.Sorry.Weight, TableWeight: weightIn(s.Sorry.Addr.String())})
		}
		st.VirtualServers = append(st.VirtualServers, ss)
	}
	return st
}
