package daemon

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leasehold/leasehold/node/notify"
)

// metrics are the daemon's Prometheus metrics, on its own registry.
type metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	alarms      *prometheus.CounterVec
	renewRTT    prometheus.Histogram
	margin      prometheus.Gauge
	sessionUp   prometheus.Gauge
	sessionLoss prometheus.Counter
	hookFails   *prometheus.CounterVec
}

// stateCollector reads per-group and per-instance state at scrape time.
type stateCollector struct {
	d        *Daemon
	role     *prometheus.Desc
	vrrp     *prometheus.Desc
	drops    *prometheus.Desc
	sent     *prometheus.Desc
	epoch    *prometheus.Desc
	armed    *prometheus.Desc
	noQuorum *prometheus.Desc
	notify   *prometheus.Desc
	relRetry *prometheus.Desc
	refresh  *prometheus.Desc
	garps    *prometheus.Desc
	withheld *prometheus.Desc
	writes   *prometheus.Desc
	foreign  *prometheus.Desc
	drbdRole *prometheus.Desc
	// MySQL servers of the groups.
	mysqlWritable, mysqlRefused, mysqlKilled, mysqlCorrected, mysqlReasserted, mysqlSemiSync *prometheus.Desc
	refused, outdated, splitBrain                                                            *prometheus.Desc
}

func newStateCollector(d *Daemon) *stateCollector {
	return &stateCollector{d: d,
		role:     prometheus.NewDesc("leasehold_group_role", "1 for the group's current role.", []string{"group", "role"}, nil),
		vrrp:     prometheus.NewDesc("leasehold_vrrp_state", "1 for the VRRP instance's current state.", []string{"instance", "state"}, nil),
		drops:    prometheus.NewDesc("leasehold_vrrp_drops_total", "Adverts dropped, by reason.", []string{"instance", "reason"}, nil),
		sent:     prometheus.NewDesc("leasehold_vrrp_adverts_sent_total", "Adverts sent.", []string{"instance"}, nil),
		epoch:    prometheus.NewDesc("leasehold_group_epoch", "Epoch of the grant held (0: none).", []string{"group"}, nil),
		armed:    prometheus.NewDesc("leasehold_fence_armed", "1 while the group's kernel fence is armed.", []string{"group"}, nil),
		noQuorum: prometheus.NewDesc("leasehold_no_split_brain_protection", "1 when quorum is none (plain VRRP).", nil, nil),
		refresh: prometheus.NewDesc("leasehold_fence_refreshes_total",
			"Kernel fence refreshes on lease renewals, by result (ok, failed: an error or too late).", []string{"group", "result"}, nil),
		relRetry: prometheus.NewDesc("leasehold_release_retrying",
			"1 while a failed release of the group is being retried (its key still sits under this node's session).", []string{"group"}, nil),
		garps: prometheus.NewDesc("leasehold_vrrp_garps_total",
			"Gratuitous ARPs / unsolicited NAs, by result: sent, withheld (the lease gate refused: not owner or deadline passed), "+
				"failed (a send error, retried).", []string{"instance", "result"}, nil),
		withheld: prometheus.NewDesc("leasehold_vrrp_adverts_withheld_total",
			"Adverts with a non-zero priority (and claims) the lease gate refused: the quorum session was not live.", []string{"instance"}, nil),
		writes: prometheus.NewDesc("leasehold_quorum_writes_total",
			"Lease requests this node sent for the group (op acquire or release, retries included): the quorum writes the storm bound limits.",
			[]string{"group", "op"}, nil),
		foreign: prometheus.NewDesc("leasehold_vrrp_foreign_speakers",
			"Non-members heard on the instance's VRID (lease mode), remembered up to 16.", []string{"instance"}, nil),
		drbdRole: prometheus.NewDesc("leasehold_drbd_role",
			"1 for the DRBD resource's current role (Primary, Secondary; unknown when /proc/drbd cannot say).", []string{"group", "resource", "role"}, nil),
		outdated: prometheus.NewDesc("leasehold_drbd_outdated_at_quorum",
			"1 when the last promotion found this node's disk marked outdated at the quorum (it refuses to promote until a resync or the operator clears the mark).", []string{"group", "resource"}, nil),
		splitBrain: prometheus.NewDesc("leasehold_drbd_split_brain",
			"1 while DRBD reports a split brain on this node (StandAlone after its split-brain handler ran) until it is connected again.", []string{"group", "resource"}, nil),
		refused: prometheus.NewDesc("leasehold_drbd_promotions_refused_total",
			"Promotions of the DRBD resource its decision refused (data not known newest, peer Primary, ...).", []string{"group", "resource"}, nil),
		mysqlWritable: prometheus.NewDesc("leasehold_mysql_writable",
			"1 while the group's MySQL server was made writable under the lease (read_only OFF), 0 while it is kept read-only.", []string{"group", "instance"}, nil),
		mysqlRefused: prometheus.NewDesc("leasehold_mysql_promotions_refused_total",
			"Promotions of the MySQL server its decision refused (stale epoch, relay log not applied with catchup_policy refuse, epoch table unreadable).",
			[]string{"group", "instance"}, nil),
		mysqlKilled: prometheus.NewDesc("leasehold_mysql_connections_killed_total",
			"Client connections killed on the MySQL server (demotions, start, the watch, the peer fence).", []string{"group", "instance"}, nil),
		mysqlCorrected: prometheus.NewDesc("leasehold_mysql_writable_without_lease_total",
			"Times the MySQL server was found writable without the lease (at start or by the watch) and made read-only.", []string{"group", "instance"}, nil),
		mysqlReasserted: prometheus.NewDesc("leasehold_mysql_read_only_reasserted_total",
			"Times the owner's MySQL server was found read-only (someone set read_only, or mysqld restarted) and made writable again after the epoch table confirmed the current epoch.",
			[]string{"group", "instance"}, nil),
		mysqlSemiSync: prometheus.NewDesc("leasehold_mysql_semi_sync_active",
			"1 while the MySQL server's commits wait for the peer (semi-synchronous replication on and not fallen back to asynchronous), 0 otherwise; absent without semi-sync support.",
			[]string{"group", "instance"}, nil),
		notify: prometheus.NewDesc("leasehold_notify_scripts_total",
			"Notify script runs of an instance or sync group by outcome: run (finished), failed (non-zero exit or killed), "+
				"timeout (killed at notify_timeout), dropped (queue full).", []string{"group", "outcome"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.role, c.vrrp, c.drops, c.sent, c.epoch, c.armed, c.noQuorum, c.notify, c.relRetry, c.refresh, c.garps, c.withheld, c.writes, c.foreign, c.drbdRole, c.refused, c.splitBrain,
		c.mysqlWritable, c.mysqlRefused, c.mysqlKilled, c.mysqlCorrected, c.mysqlReasserted, c.mysqlSemiSync, c.outdated} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.d.groups {
		s := g.Status()
		ch <- prometheus.MustNewConstMetric(c.role, prometheus.GaugeValue, 1, s.Group, s.Role)
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(s.Epoch), s.Group)
		armed := 0.0
		if s.FenceArmed {
			armed = 1
		}
		ch <- prometheus.MustNewConstMetric(c.armed, prometheus.GaugeValue, armed, s.Group)
		retrying := 0.0
		if s.ReleasePending != 0 {
			retrying = 1
		}
		ch <- prometheus.MustNewConstMetric(c.relRetry, prometheus.GaugeValue, retrying, s.Group)
		ch <- prometheus.MustNewConstMetric(c.refresh, prometheus.CounterValue, float64(s.FenceRefreshes-s.FenceRefreshFailures), s.Group, "ok")
		ch <- prometheus.MustNewConstMetric(c.refresh, prometheus.CounterValue, float64(s.FenceRefreshFailures), s.Group, "failed")
		ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(s.QuorumAcquires), s.Group, "acquire")
		ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(s.QuorumReleases), s.Group, "release")
	}
	for _, in := range c.d.insts {
		s := in.Status()
		ch <- prometheus.MustNewConstMetric(c.vrrp, prometheus.GaugeValue, 1, s.Name, s.State)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.AdvertsSent), s.Name)
		ch <- prometheus.MustNewConstMetric(c.withheld, prometheus.CounterValue, float64(s.AdvertsWithheld), s.Name)
		if c.d.leaseMode() {
			ch <- prometheus.MustNewConstMetric(c.foreign, prometheus.GaugeValue, float64(len(s.Foreign)), s.Name)
		}
		for result, n := range map[string]uint64{"sent": s.GARPsSent, "withheld": s.GARPsWithheld, "failed": s.GARPFailures} {
			ch <- prometheus.MustNewConstMetric(c.garps, prometheus.CounterValue, float64(n), s.Name, result)
		}
		for reason, n := range s.Drops {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), s.Name, reason)
		}
	}
	for _, m := range c.d.muxes {
		for reason, n := range m.Drops().Snapshot() {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), "", reason)
		}
	}
	counts := func(group string, n notify.Counters) {
		for outcome, v := range map[string]uint64{"run": n.Runs, "failed": n.Failures, "timeout": n.Timeouts, "dropped": n.Dropped} {
			ch <- prometheus.MustNewConstMetric(c.notify, prometheus.CounterValue, float64(v), group, outcome)
		}
	}
	for name, n := range c.d.notifiers {
		counts(name, n.Counters())
	}
	for name, n := range c.d.syncNotifiers {
		counts(name, n.Counters())
	}
	for _, r := range c.d.drbd {
		s := r.status()
		role := s.Role
		if role == "" {
			role = "unknown"
		}
		ch <- prometheus.MustNewConstMetric(c.drbdRole, prometheus.GaugeValue, 1, s.Group, s.Resource, role)
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.Refusals), s.Group, s.Resource)
		marked := 0.0
		if s.OutdatedAtQuorum {
			marked = 1
		}
		ch <- prometheus.MustNewConstMetric(c.outdated, prometheus.GaugeValue, marked, s.Group, s.Resource)
		split := 0.0
		if s.SplitBrain.Active {
			split = 1
		}
		ch <- prometheus.MustNewConstMetric(c.splitBrain, prometheus.GaugeValue, split, s.Group, s.Resource)
	}
	for _, m := range c.d.mysql {
		s := m.r.Stats()
		writable := 0.0
		if s.Promoted != 0 {
			writable = 1
		}
		ch <- prometheus.MustNewConstMetric(c.mysqlWritable, prometheus.GaugeValue, writable, m.group, m.instance)
		ch <- prometheus.MustNewConstMetric(c.mysqlRefused, prometheus.CounterValue, float64(s.Refusals), m.group, m.instance)
		ch <- prometheus.MustNewConstMetric(c.mysqlKilled, prometheus.CounterValue, float64(s.Killed), m.group, m.instance)
		ch <- prometheus.MustNewConstMetric(c.mysqlCorrected, prometheus.CounterValue, float64(s.Corrected), m.group, m.instance)
		ch <- prometheus.MustNewConstMetric(c.mysqlReasserted, prometheus.CounterValue, float64(s.Reasserted), m.group, m.instance)
		if s.SemiSync != "" {
			active := 0.0
			if s.SemiSync == "on" {
				active = 1
			}
			ch <- prometheus.MustNewConstMetric(c.mysqlSemiSync, prometheus.GaugeValue, active, m.group, m.instance)
		}
	}
	none := 0.0
	if !c.d.leaseMode() {
		none = 1
	}
	ch <- prometheus.MustNewConstMetric(c.noQuorum, prometheus.GaugeValue, none)
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_transitions_total",
			Help: "Role transitions per group and target role."}, []string{"group", "to"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_alarms_total",
			Help: "Alarms (stale-holder, fence-failed, lease-deleted...) per group."}, []string{"group", "kind"}),
		renewRTT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leasehold_renew_latency_seconds",
			Help: "Round trip of acknowledged lease renewals.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		margin: prometheus.NewGauge(prometheus.GaugeOpts{Name: "leasehold_deadline_margin_seconds",
			Help: "Time left to the local deadline right after the last renewal."}),
		sessionUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "leasehold_quorum_session_up",
			Help: "1 while this node holds a quorum session."}),
		sessionLoss: prometheus.NewCounter(prometheus.CounterOpts{Name: "leasehold_quorum_session_lost_total",
			Help: "Quorum sessions lost."}),
		hookFails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_hook_failures_total",
			Help: "Failed hook runs per group and kind (fence_peer, promote, demote)."}, []string{"group", "kind"}),
	}
	m.reg.MustRegister(m.transitions, m.alarms, m.renewRTT, m.margin, m.sessionUp, m.sessionLoss, m.hookFails,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) transition(group, to string) { m.transitions.WithLabelValues(group, to).Inc() }
func (m *metrics) alarm(group, kind string)    { m.alarms.WithLabelValues(group, kind).Inc() }

func (m *metrics) renewed(rtt time.Duration, deadline time.Time) {
	m.renewRTT.Observe(rtt.Seconds())
	m.margin.Set(time.Until(deadline).Seconds())
}

func (m *metrics) session(up bool, _ error) {
	if up {
		m.sessionUp.Set(1)
		return
	}
	m.sessionUp.Set(0)
	m.sessionLoss.Inc()
}

// watch registers the per-group and per-instance collector.
func (m *metrics) watch(d *Daemon) { m.reg.MustRegister(newStateCollector(d), newLVSCollector(d)) }

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
