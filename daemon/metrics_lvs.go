package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// lvsCollector reads the IPVS director's state at scrape time: per real
// server its check results, transitions, liveness and weight in the
// table.
type lvsCollector struct {
	d           *Daemon
	checks      *prometheus.Desc
	transitions *prometheus.Desc
	up          *prometheus.Desc
	weight      *prometheus.Desc
	quorum      *prometheus.Desc
	ops         *prometheus.Desc
	errors      *prometheus.Desc
}

func newLVSCollector(d *Daemon) *lvsCollector {
	rs := []string{"virtual_server", "real_server"}
	return &lvsCollector{d: d,
		checks: prometheus.NewDesc("leasehold_lvs_check_results_total",
			"Real-server checks run, by checker and result (ok, failed).", append(rs, "check", "result"), nil),
		transitions: prometheus.NewDesc("leasehold_lvs_real_server_transitions_total",
			"Real-server state changes as the checks decide them (to up or down).", append(rs, "to"), nil),
		up: prometheus.NewDesc("leasehold_lvs_real_server_up",
			"1 while every checker of the real server is up.", rs, nil),
		weight: prometheus.NewDesc("leasehold_lvs_real_server_weight",
			"The real server's weight in the desired IPVS table (absent: not in it).", rs, nil),
		quorum: prometheus.NewDesc("leasehold_lvs_quorum_up",
			"1 while the virtual server's live weight holds its quorum.", []string{"virtual_server"}, nil),
		ops: prometheus.NewDesc("leasehold_lvs_table_changes_total",
			"Changes made to the kernel's IPVS table.", nil, nil),
		errors: prometheus.NewDesc("leasehold_lvs_reconcile_errors_total",
			"Reconcile passes that failed (the kernel refused a change or could not be read).", nil, nil),
	}
}

func (c *lvsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.checks, c.transitions, c.up, c.weight, c.quorum, c.ops, c.errors} {
		ch <- d
	}
}

func (c *lvsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.d.lvs == nil {
		return
	}
	st := c.d.lvs.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	counter(c.ops, st.Ops)
	counter(c.errors, st.ReconcileErrors)
	for _, vs := range st.VirtualServers {
		gauge(c.quorum, b(vs.QuorumUp), vs.Name)
		for _, r := range vs.RealServers {
			if r.TableWeight >= 0 {
				gauge(c.weight, float64(r.TableWeight), vs.Name, r.Addr)
			}
			if r.Sorry {
				continue
			}
			gauge(c.up, b(r.Alive), vs.Name, r.Addr)
			counter(c.transitions, r.Ups, vs.Name, r.Addr, "up")
			counter(c.transitions, r.Downs, vs.Name, r.Addr, "down")
			for _, ck := range r.Checks {
				counter(c.checks, ck.OK, vs.Name, r.Addr, string(ck.Kind), "ok")
				counter(c.checks, ck.Failed, vs.Name, r.Addr, string(ck.Kind), "failed")
			}
		}
	}
}
